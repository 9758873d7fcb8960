#!/usr/bin/env bash
# Render RUN/report.html in headless Chromium (Debian's `chromium` package) and save a PNG,
# to look at the report as a reader would. Usage: scripts/screenshot_report.sh RUN [OUT.png]
set -euo pipefail
run=${1:?usage: $0 RUN [OUT.png]}
out=${2:-$run/report.png}
profile=$(mktemp -d)
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --window-size=1200,4000 \
  --screenshot="$out" "file://$(realpath "$run/report.html")" 2>/dev/null
rm -rf "$profile"
echo "$out"
