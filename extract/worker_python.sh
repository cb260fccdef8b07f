#!/bin/sh
# The interpreter Dask's worker processes start through: SIGINT is ignored here, which survives the
# exec, so a Ctrl-C at the terminal reaches only the parent (no worker tracebacks); the parent stops
# the workers itself.
trap '' INT
exec "$CLIPVID_WORKER_PYTHON" "$@"
