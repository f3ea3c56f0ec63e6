#!/bin/sh
# Rebuilds the embedded demo guest (vmrun/demo.elf) from demo.c. Needs aarch64-linux-gnu-gcc.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
aarch64-linux-gnu-gcc -O2 -static -nostdlib -ffreestanding -fno-builtin -fno-stack-protector \
    -march=armv8-a -Wl,--build-id=none -o "$here/../../../vmrun/demo.elf" "$here/demo.c"
aarch64-linux-gnu-strip "$here/../../../vmrun/demo.elf"
