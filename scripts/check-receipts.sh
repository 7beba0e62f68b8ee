#!/usr/bin/env bash
# Validate every committed receipt and manifest (baselines/, fixtures/reference/*/manifest.json,
# receipts/tests/data/) and freshly written parity and bench receipts with two standard clients, exactly
# as a user would: `check-jsonschema --schemafile schemas/<kind>.v1.json FILE` and python-jsonschema
# (scripts/validate-receipts.py). The bundled schemas embed their shared definitions, so neither needs
# the network.
#
# Usage: scripts/check-receipts.sh [--no-run] [EXTRA.json ...]
#   --no-run   do not produce fresh receipts (validate what is committed and already in target/receipts/)
# The clients are installed from PyPI into a venv under target/ (or set PYTHON / CHECK_JSONSCHEMA to
# existing ones). When they cannot be had, prints why and exits 0 (CI skips honestly).
# Exit 0 all valid (or skipped), 1 one invalid, 2 setup error.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
venv=$target/schema-venv

run=1
if [ "${1:-}" = "--no-run" ]; then
  run=0
  shift
fi

if [ -z "${PYTHON:-}" ]; then
  if [ ! -x "$venv/bin/check-jsonschema" ]; then
    { python3 -m venv "$venv" && "$venv/bin/pip" install -q check-jsonschema jsonschema; } >&2 || {
      echo "SKIP: cannot install check-jsonschema and jsonschema from PyPI into $venv; receipts not validated by external clients" >&2
      exit 0
    }
  fi
  PYTHON=$venv/bin/python
  CHECK_JSONSCHEMA=${CHECK_JSONSCHEMA:-$venv/bin/check-jsonschema}
fi
CHECK_JSONSCHEMA=${CHECK_JSONSCHEMA:-check-jsonschema}
"$PYTHON" -c 'import jsonschema' 2>/dev/null || { echo "needs python-jsonschema: $PYTHON -m pip install jsonschema" >&2; exit 2; }
command -v "$CHECK_JSONSCHEMA" >/dev/null || { echo "needs check-jsonschema: pip install check-jsonschema" >&2; exit 2; }

mkdir -p "$target/receipts"
if [ "$run" = 1 ]; then
  parity=$target/release/parity
  (cd "$root" && cargo build --release -p parity >&2)
  model=$root/fixtures/reference/trained/tiny-trained-b158.i2_s.gguf
  "$parity" run "$model" --receipt "$target/receipts/fresh-run.json" >/dev/null
  "$parity" bench "$model" -p 8 -n 4 -r 1 --threads 1 --receipt "$target/receipts/fresh-bench.json" >/dev/null
fi

shopt -s nullglob
files=("$root"/baselines/*.json "$root"/fixtures/reference/*/manifest.json "$root"/receipts/tests/data/*.json
       "$target"/receipts/*.json "$@")
[ "${#files[@]}" -gt 0 ] || { echo "nothing to validate" >&2; exit 2; }

failed=0
mapfile -t schemas < <("$PYTHON" "$root/scripts/validate-receipts.py" --schema-for "${files[@]}")
for i in "${!files[@]}"; do
  f=${files[$i]} s=${schemas[$i]}
  if [ -z "$s" ]; then echo "$f: unknown schema_version"; failed=1; continue; fi
  if "$CHECK_JSONSCHEMA" --schemafile "$s" "$f" >/dev/null 2>&1; then
    echo "$f: ok (check-jsonschema, $(basename "$s"))"
  else
    echo "$f: INVALID (check-jsonschema, $(basename "$s"))"
    "$CHECK_JSONSCHEMA" --schemafile "$s" "$f" 2>&1 | sed 's/^/  /' | head -20
    failed=1
  fi
done
"$PYTHON" "$root/scripts/validate-receipts.py" "${files[@]}" || failed=1
exit "$failed"
