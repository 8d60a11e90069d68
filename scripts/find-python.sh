#!/bin/sh
# Prints the path of a working Python X.Y interpreter (`scripts/find-python.sh 3.13`), or exits 1.
# Looks for pythonX.Y on PATH, then in pyenv's versions (a pyenv shim on PATH fails unless that
# version is selected, so the shim alone is not enough).
set -eu
version="$1"
works() { "$1" -c 'import sys; sys.exit(0)' >/dev/null 2>&1; }

if works "python$version"; then
    command -v "python$version"
    exit 0
fi
if command -v pyenv >/dev/null 2>&1; then
    for dir in $(ls -d "$(pyenv root)/versions/$version".* 2>/dev/null | sort -V -r); do
        if works "$dir/bin/python$version"; then
            echo "$dir/bin/python$version"
            exit 0
        fi
    done
fi
exit 1
