#!/usr/bin/env bash
# Builds the guest corpus of the differential tests.
#
#   tests/guests/build/NAME-O0, NAME-O2   static AArch64 Linux programs (aarch64-linux-gnu-gcc -static)
#   tests/guests/build/native/NAME-O2     the same C sources for the host (x86-64), for benchmarks
#
# Every *.c and *.S file directly in tests/guests/ is one program (demo/ is not part of it: it is
# the embedded demo, built by demo/build.sh). Outputs are rebuilt only when older than their
# source or this script. Skips cleanly (exit 0) when the cross compiler is missing.
# Environment: CROSS_CC (default aarch64-linux-gnu-gcc), HOST_CC (default gcc), JOBS.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/build"
cross=${CROSS_CC:-aarch64-linux-gnu-gcc}
hostcc=${HOST_CC:-gcc}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

if ! command -v "$cross" >/dev/null 2>&1; then
    echo "build.sh: $cross not found; guest programs not built (install gcc-aarch64-linux-gnu)" >&2
    exit 0
fi
mkdir -p "$out/native"

common="-static -ffp-contract=off -Wall -Wno-unused-function -Wno-unused-variable -fno-strict-aliasing"

# Emits one line per build job: "compiler flags source output".
jobs_list() {
    for src in "$here"/*.c "$here"/*.S; do
        [ -e "$src" ] || continue
        base=$(basename "$src")
        name=${base%.*}
        for opt in O0 O2; do
            echo "$cross -$opt|$src|$out/$name-$opt"
        done
        # Native x86-64 builds only for the benchmark kernels (benches/kernels.txt): the
        # other guests may use AArch64 assembly or mcontext fields.
        if [ "${src%.c}" != "$src" ] && command -v "$hostcc" >/dev/null 2>&1 \
            && grep -Eq "^$name[[:space:]]*\|" "$here/../../benches/kernels.txt" 2>/dev/null; then
            echo "$hostcc -O2|$src|$out/native/$name-O2"
        fi
    done
}

build_one() {
    IFS='|' read -r cc src dst <<<"$1"
    if [ -e "$dst" ] && [ "$dst" -nt "$src" ] && [ "$dst" -nt "$here/build.sh" ]; then
        return 0
    fi
    # shellcheck disable=SC2086
    if ! $cc $common -o "$dst.tmp" "$src" -lm; then
        echo "build.sh: FAILED: $cc $src" >&2
        rm -f "$dst.tmp"
        return 1
    fi
    mv -f "$dst.tmp" "$dst"
}
export -f build_one
export here common

status=0
jobs_list | xargs -P "$jobs" -I{} bash -c 'build_one "$1"' _ {} || status=1
count=$(find "$out" -maxdepth 1 -type f \( -name '*-O0' -o -name '*-O2' \) | wc -l)
echo "build.sh: $count guest binaries in $out"
exit $status
