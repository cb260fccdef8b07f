#!/usr/bin/env bash
# Sourced by run_pipeline.sh and run_tests.sh: make sure .venv exists with the requirements
# and an ffmpeg, (re)installing only when requirements.txt changed. Sets $PY.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
# The stamp hashes the two files' contents (not their paths: a second checkout of the same version
# reuses the environment) and the list of top-level packages (a new stage, e.g. predict/, must be
# installed before `clipvid` can run it).
STAMP="$VENV/.clipvid-$({ cat "$ROOT/requirements.txt" "$ROOT/pyproject.toml"; (cd "$ROOT" && ls -d -- */__init__.py); } \
  | sha1sum | cut -c1-12)"

pick_python() {
  # torch 2.14.1's wheels on this kind of machine are for CPython 3.11; prefer it.
  for cand in python3.11 python3 python; do
    if command -v "$cand" >/dev/null 2>&1; then echo "$cand"; return; fi
  done
  echo "error: no python3 found on PATH" >&2; exit 2
}

if [ ! -f "$STAMP" ]; then
  echo "[setup] creating $VENV and installing requirements (first run only; a few minutes)" >&2
  [ -x "$VENV/bin/python" ] || "$(pick_python)" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  "$VENV/bin/python" -m pip install -q -r "$ROOT/requirements.txt"
  # setuptools tells every editable install to beware of same-named folders in the working
  # directory (pip shows it as a BuildBackendWarning); it is expected here, so that one is muted.
  "$VENV/bin/python" -W "ignore:Editable installation" -m pip install -q --no-deps --no-build-isolation \
    -e "$ROOT" >/dev/null
  rm -f "$VENV"/.clipvid-*
  touch "$STAMP"
fi
PY="$VENV/bin/python"
# ffmpeg: $CLIPVID_FFMPEG, else the static binary from imageio-ffmpeg, else one on PATH.
if ! "$PY" -c "from extract.ffmpeg_bin import check_ffmpeg; check_ffmpeg()" >/dev/null; then
  echo "error: no working ffmpeg; set CLIPVID_FFMPEG or install ffmpeg" >&2
  exit 2
fi
export PY
