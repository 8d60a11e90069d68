#!/usr/bin/env bash
# The index tests run on PostgreSQL too: a server named by REPLAYD_TEST_POSTGRES_URL, else one on
# 127.0.0.1:5432, else a throw-away cluster the tests start from Debian's postgresql binaries.
# Install those binaries when none of the three is possible (as root, with apt-get).
set -eu
[ -n "${REPLAYD_TEST_POSTGRES_URL:-}" ] && exit 0
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && exit 0
if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then exit 0; fi
if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then exit 0; fi
"$(dirname "$0")/apt-install.sh" postgresql "the index tests" && exit 0
echo "PostgreSQL is needed by the index tests: run one on 127.0.0.1:5432, set REPLAYD_TEST_POSTGRES_URL, or install Debian's postgresql" >&2
exit 1
