#!/usr/bin/env bash
# Produce real receipts with `parity run` (the run_cli tests copy every receipt they write to
# target/receipts/) and validate them with scripts/validate-receipts.py — python-jsonschema, an
# implementation independent of the Rust jsonschema crate that `parity verify` and the tests use.
#
# Usage: scripts/check-receipts.sh [--no-run] [EXTRA.json ...]
#   --no-run   validate what is already in target/receipts/ (do not run cargo test first)
# Needs python-jsonschema >= 4.18 (`python3 -m pip install jsonschema`, e.g. in a venv; set PYTHON to
# that venv's python). Not called by `cargo test`. Exit 0 all valid, 1 one invalid, 2 setup error.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
python=${PYTHON:-python3}

run=1
if [ "${1:-}" = "--no-run" ]; then
  run=0
  shift
fi

"$python" -c 'import jsonschema, referencing' 2>/dev/null || {
  echo "needs python-jsonschema >= 4.18: $python -m pip install jsonschema (or PYTHON=/path/to/venv/bin/python)" >&2
  exit 2
}

if [ "$run" = 1 ]; then
  rm -f "$target"/receipts/run-*.json
  (cd "$root" && cargo test --release -p parity --test run_cli -- --quiet \
    bare_parity_run every_recorded_set one_flipped_logit) >&2
fi

shopt -s nullglob
files=("$target"/receipts/*.json "$@")
[ "${#files[@]}" -gt 0 ] || { echo "no receipts in $target/receipts/ (run without --no-run)" >&2; exit 2; }
exec "$python" "$root/scripts/validate-receipts.py" "${files[@]}"
