#!/bin/sh
# The browser tests drive Debian's Chromium; install it when absent (as root, with apt-get).
set -eu
CHROMIUM="${REPLAYD_CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] && exit 0
"$(dirname "$0")/apt-install.sh" chromium "the browser tests" && exit 0
echo "Chromium is missing at $CHROMIUM: install Debian's chromium (sudo apt-get install chromium) or set REPLAYD_CHROMIUM" >&2
exit 1
