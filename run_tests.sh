#!/usr/bin/env bash
# Set up .venv if needed, then run the whole test suite. Extra arguments go to pytest; paths among
# them mean what they mean in the caller's folder (e.g. ~/clipvid/run_tests.sh ~/clipvid/tests/test_x.py).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")" && pwd)"
ARGS=()
for a in "$@"; do
  path="${a%%::*}"   # a test id: tests/test_x.py::test_y
  if [ -n "$path" ] && [ "${a#-}" = "$a" ] && [ -e "$path" ]; then
    case "$a" in /*) ;; *) a="$PWD/$a" ;; esac
  fi
  ARGS+=("$a")
done
cd "$ROOT"
source scripts/ensure_env.sh
exec "$PY" -m pytest -q ${ARGS[@]+"${ARGS[@]}"}
