#!/bin/sh
# ensure-compiler.sh PYTHON: a C compiler and PYTHON's headers, which build server/_apart.c (the stored
# format's walk in C) and scrubbing/_domwalk.c (the scrubber's DOM walk) at install; installed with
# apt-get when absent and we may. Without them the install still succeeds and replayd walks in Python,
# at several times the CPU: this only warns.
set -eu
here="$(dirname "$0")"
command -v cc >/dev/null || "$here/apt-install.sh" gcc "building replayd's C walks" || true
headers="$("$1" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
[ -f "$headers/Python.h" ] || "$here/apt-install.sh" python3-dev "building replayd's C walks" || true
if ! command -v cc >/dev/null || [ ! -f "$headers/Python.h" ]; then
	echo "no C compiler or no Python.h in $headers: replayd's C walks are not built; replayd will" \
		"scrub and store segments in Python (install gcc and Python's headers, then rerun make)" >&2
fi
