#!/usr/bin/env bash
# Set up upstream llama.cpp as a live `parity` reference (docs/ffi-ref.md, "Upstream llama.cpp").
#
#   scripts/setup-upstream-ref.sh [DIR]          # default DIR: target/upstream-llama.cpp
#   BITNET_CPP_DIR=DIR/llama.cpp cargo build --release --features ffi
#
# Fetches the llama.cpp tree vendored in the PyPI sdist of llama-cpp-python 0.3.36 (ggml-org/llama.cpp
# 0c1e57098, the tree shared/reference/upstream was recorded with) through pip, by name, and builds only
# libllama + libggml*: CPU, Release, shared, native flags. Nothing is vendored in this repository.
#
# Compiler: clang when available (CC/CXX override). The recorded upstream goldens come from a build whose TQ
# dot epilogue is not FMA-contracted, which is what clang's -ffp-contract=on gives; a GCC build fuses it, and
# the engine then needs `--switch U1` to match it (docs/upstream-numerics.md §8).
#
# Environment: JOBS (default 2), PARITY_LLAMA_SDIST (use this sdist .tar.gz instead of downloading).
set -euo pipefail

VERSION=0.3.36
DIR=${1:-target/upstream-llama.cpp}
JOBS=${JOBS:-2}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
SRC="$DIR/llama.cpp"
BUILD="$SRC/build"

if [[ -z "${CC:-}" ]] && command -v clang >/dev/null && command -v clang++ >/dev/null; then
  export CC=clang CXX=clang++
fi

start=$(date +%s)
if [[ ! -f "$SRC/include/llama.h" ]]; then
  sdist=${PARITY_LLAMA_SDIST:-}
  if [[ -z "$sdist" ]]; then
    command -v pip >/dev/null || { echo "setup-upstream-ref: pip is needed to fetch llama-cpp-python==$VERSION" >&2; exit 2; }
    pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$DIR/sdist"
    sdist="$DIR/sdist/llama_cpp_python-$VERSION.tar.gz"
  fi
  tmp="$DIR/unpack"
  rm -rf "$tmp" && mkdir -p "$tmp"
  tar -xzf "$sdist" -C "$tmp" "llama_cpp_python-$VERSION/vendor/llama.cpp"
  rm -rf "$SRC"
  mv "$tmp/llama_cpp_python-$VERSION/vendor/llama.cpp" "$SRC"
  rm -rf "$tmp"
fi

cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=ON \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_BUILD_COMMON=OFF -DLLAMA_CURL=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF >"$DIR/cmake.log"
nice -n 19 cmake --build "$BUILD" --target llama -j "$JOBS" >"$DIR/build.log"

# The sdist has no .git: remember the commit for the worker's SystemInfo (ffi-ref/build.rs reads it).
echo 0c1e57098 >"$SRC/.parity-llama-commit"
echo "upstream llama.cpp ready in $(( $(date +%s) - start )) s ($("${CXX:-c++}" --version | head -1))"
echo "  BITNET_CPP_DIR=$SRC cargo build --release --features ffi"
