#!/usr/bin/env bash
# Screenshot a `parity report` HTML page with headless Chromium.
#
# Usage: scripts/render-report.sh REPORT.html [OUT.png] [WIDTHxHEIGHT]
# Needs Debian's chromium once: apt-get install -y chromium
set -euo pipefail

html=${1:?usage: render-report.sh REPORT.html [OUT.png] [WIDTHxHEIGHT]}
out=${2:-${html%.html}.png}
size=${3:-1200x1600}
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "chromium not found: apt-get install -y chromium" >&2; exit 2; }

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile" \
  --screenshot="$(realpath -m "$out")" --window-size="${size/x/,}" "file://$(realpath "$html")" >/dev/null 2>&1
[ -s "$out" ] || { echo "no screenshot written to $out" >&2; exit 1; }
echo "$out"
