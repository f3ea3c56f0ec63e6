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
if [ ! -x tests/guests/build/busybox ] || [ ! -x tests/guests/build/native/busybox ]; then
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    if ( set -e
         tmp=$(mktemp -d)
         trap 'rm -rf "$tmp"' EXIT
         $sudo dpkg --add-architecture arm64
         $sudo apt-get update -qq
         cd "$tmp"
         apt-get download busybox-static:arm64 busybox-static:amd64 2>/dev/null
         dpkg-deb -x busybox-static_*_arm64.deb arm64
         dpkg-deb -x busybox-static_*_amd64.deb amd64
         mkdir -p "$root/tests/guests/build/native"
         cp arm64/bin/busybox "$root/tests/guests/build/busybox"
         cp amd64/bin/busybox "$root/tests/guests/build/native/busybox" ); then
        echo "busybox-static:arm64 and :amd64 ready"
    else
        echo "could not fetch busybox-static; the busybox test will say SKIPPED"
    fi
fi

step "cargo build --release -p vmrun -p vmc-compiler -p vmbench (vmrun, vmc, vmbench)"
cargo build --release -p vmrun -p vmc-compiler -p vmbench

step "cargo test --workspace --release"
cargo test --workspace --release

step "vmbench --quick (smoke test: every mode runs and prints the same output; timings not asserted)"
./target/release/vmbench --quick --out target/vmbench-quick

step "all tests passed"
