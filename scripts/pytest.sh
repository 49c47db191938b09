#!/usr/bin/env bash
# Runs pytest in the project venv. pytest exits 5 when it collects no test: that is a
# failure here too, since a suite that silently runs nothing proves nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests for: $*" >&2
  exit 1
fi
exit "$rc"
