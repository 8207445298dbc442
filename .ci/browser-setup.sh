#!/bin/sh
# Prepares the browser test (tests/integration/browser.rs): Debian's chromium, a colour
# emoji font so screenshots show emoji instead of empty boxes, and playwright-core from the
# committed lock file. playwright-core never downloads a browser; the test uses
# /usr/bin/chromium.
set -eu
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ] || [ ! -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y chromium fonts-noto-color-emoji
fi

cd tests/browser
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
