#!/usr/bin/env bash
# The test command of the project (CI runs it through .ci/run from the repository root).
# On a fresh Debian machine it installs qemu-user and the AArch64 cross compiler when missing,
# builds the guest corpus, builds vmrun in release mode and runs the whole workspace's tests
# in release mode (the differential tests interpret guests: release keeps them fast).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

step() { printf '\n=== %s\n' "$*"; }

if ! command -v qemu-aarch64 >/dev/null 2>&1 || ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1; then
    step "installing qemu-user and gcc-aarch64-linux-gnu"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update
    $sudo apt-get install -y qemu-user gcc-aarch64-linux-gnu
fi
for tool in qemu-aarch64 aarch64-linux-gnu-gcc cargo; do
    command -v "$tool" >/dev/null 2>&1 || { echo "run.sh: $tool is still missing" >&2; exit 1; }
done

step "building guest programs (tests/guests/build.sh)"
bash tests/guests/build.sh

step "fetching busybox-static:arm64 (a real-world guest for tests/tests/busybox.rs and vmbench) and :amd64 (vmbench's native runs)"
# One package at a time: an amd64 download that fails must not cost the arm64 guest.
fetch_busybox() { # ARCH DEST
    [ -x "$2" ] && return 0
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    # (`set -e` does not apply inside an `if` condition: each step is chained.)
    if ( tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT &&
         { [ "$1" != arm64 ] || $sudo dpkg --add-architecture arm64; } &&
         $sudo apt-get update -qq && cd "$tmp" &&
         apt-get download "busybox-static:$1" 2>/dev/null &&
         dpkg-deb -x busybox-static_*_"$1".deb x &&
         mkdir -p "$(dirname "$2")" && cp x/bin/busybox "$2" ); then
        echo "busybox-static:$1 ready"
    else
        echo "could not fetch busybox-static:$1; $3"
    fi
}
fetch_busybox arm64 "$root/tests/guests/build/busybox" "the busybox test will say SKIPPED"
fetch_busybox amd64 "$root/tests/guests/build/native/busybox" "vmbench will run busybox without a native column"

step "cargo build --release -p vmrun -p vmc-compiler -p vmbench (vmrun, vmc, vmbench)"
cargo build --release -p vmrun -p vmc-compiler -p vmbench

step "cargo test --workspace --release"
cargo test --workspace --release

step "vmbench --quick (smoke test: every mode runs and prints the same output; timings not asserted)"
./target/release/vmbench --quick --out target/vmbench-quick

step "all tests passed"
