#!/bin/sh
# apt-install.sh PACKAGE PURPOSE: install a Debian package for the tests when we may (root, apt-get).
# Exit 0 once installed; 1 without a word when we may not, so the caller says what to do instead.
set -eu
[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || exit 1
echo "installing Debian's $1 for $2" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
