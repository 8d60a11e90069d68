#!/bin/sh
# The browser tests drive Debian's Chromium; install it when absent (as root, with apt-get).
set -eu
CHROMIUM="${REPLAYD_CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser tests" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    exit 0
fi
echo "Chromium is missing at $CHROMIUM: install Debian's chromium (sudo apt-get install chromium) or set REPLAYD_CHROMIUM" >&2
exit 1
