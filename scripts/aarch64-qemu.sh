#!/usr/bin/env bash
# aarch64 by emulation: cross-build the per-kernel test suite and `parity` for aarch64-unknown-linux-gnu, then run
# them under qemu-user — every NEON kernel against its scalar oracle (on qemu's `max` CPU, with sdot and fp16
# arithmetic, and on a Cortex-A53, without either), the ARM profiles' Q8_0 heads (tests/q8_0_arm.rs), the
# bundled `parity run`, and the committed x86 and ARM
# recorded references (fixtures/reference/{random,arm,arm-fp16}). Exits 0 with a SKIP line when the toolchain
# (rustup target, Debian's gcc-aarch64-linux-gnu, qemu-user) cannot be installed; any failure once it runs is
# an error. About 5 minutes on 2 cores, most of it the cross build.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
SYSROOT=/usr/aarch64-linux-gnu
skip() { echo "SKIP: aarch64 emulation: $1"; exit 0; }

if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    rustup target add "$TARGET" >/dev/null 2>&1 || skip "rustup target $TARGET could not be added"
fi
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null || [ ! -d "$SYSROOT/lib" ]; then
    (apt-get update -qq && apt-get install -y -qq gcc-aarch64-linux-gnu qemu-user libc6-dev-arm64-cross) >/dev/null 2>&1 \
        || skip "gcc-aarch64-linux-gnu / qemu-user / libc6-dev-arm64-cross could not be installed"
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L $SYSROOT"
QEMU=(qemu-aarch64 -L "$SYSROOT")

cargo build --release --target "$TARGET" -p parity
echo "== NEON kernels against their oracles, and the ARM profiles' Q8_0 heads end to end (qemu max CPU: sdot + fp16)"
EXPECT_ISA=neon,dotprod,neonfp16 cargo test --release --target "$TARGET" -p bitnet-engine --test kernels_each --test q8_0_arm
echo "== the same on a Cortex-A53 (no sdot, no fp16 arithmetic: smull kernels, fp16 order emulated)"
QEMU_CPU=cortex-a53 cargo test --release --target "$TARGET" -p bitnet-engine --test kernels_each --test q8_0_arm

PARITY=target/$TARGET/release/parity
echo "== parity run (bundled default) on aarch64"
"${QEMU[@]}" "$PARITY" run
for set in random arm arm-fp16; do
    for model in tiny-b158-gqa.i2_s.gguf tiny-bitnet-legacy.i2_s.gguf; do
        echo "== parity run $set/$model on aarch64"
        "${QEMU[@]}" "$PARITY" run "fixtures/reference/$set/$model" --reference "recorded:fixtures/reference/$set" \
            | grep -E '^(reference|kernels|PASS|FAIL)'
    done
done
