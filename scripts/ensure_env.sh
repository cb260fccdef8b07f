#!/usr/bin/env bash
# Sourced by run_pipeline.sh and run_tests.sh: make sure .venv exists with the requirements
# and an ffmpeg, (re)installing only when requirements.txt changed. Sets $PY.
# Portable to macOS and BSD userlands: POSIX tools only (cksum, not sha1sum).
#   CLIPVID_PYTHON=/path/to/python3.11   the interpreter to build .venv from (default: the newest found)
#   CLIPVID_TORCH_INDEX=URL              a torch wheel index: CPU-only, or a CUDA your driver runs
#   CLIPVID_SYSTEM_SITE=1                let .venv see the interpreter's packages (a torch already there)
#   CLIPVID_PY=/path/to/python           an environment you manage (conda, module load): no .venv at all
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
# Why 3.10: torch 2.14 has no wheels for older Pythons (pyproject.toml says the same).
NEED_PYTHON="3.10"
WHY_PYTHON="clipvid needs Python $NEED_PYTHON or newer (torch 2.14 has no wheels for older ones); set CLIPVID_PYTHON to one"
python_ok() {   # $1 runs, and is CPython NEED_PYTHON or newer
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' >/dev/null 2>&1
}

pick_python() {
  if [ -n "${CLIPVID_PYTHON:-}" ]; then
    python_ok "$CLIPVID_PYTHON" || { echo "error: CLIPVID_PYTHON=$CLIPVID_PYTHON: $WHY_PYTHON" >&2; exit 2; }
    echo "$CLIPVID_PYTHON"; return
  fi
  # 3.11 is what clipvid is tested with here; then newer ones; a plain python3 last (3.9 on a stock Mac).
  for cand in python3.11 python3.12 python3.13 python3.10 python3 python; do
    if command -v "$cand" >/dev/null 2>&1 && python_ok "$cand"; then echo "$cand"; return; fi
  done
  found="$(command -v python3 2>/dev/null || true)"
  echo "error: $WHY_PYTHON${found:+ (found $("$found" -V 2>&1) at $found)}" >&2
  exit 2
}

# The stamp hashes the two files' contents (not their paths: a second checkout of the same version
# reuses the environment), the list of top-level packages (a new stage, e.g. predict/, must be
# installed before `clipvid` can run it) and the torch index asked for.
STAMP="$VENV/.clipvid-$({ cat "$ROOT/requirements.txt" "$ROOT/pyproject.toml"; (cd "$ROOT" && ls -d -- */__init__.py); \
  echo "${CLIPVID_TORCH_INDEX:-}"; } | cksum | cut -d' ' -f1)"

venv_ok() {   # a .venv whose creation or first install did not stop half-way
  [ -x "$VENV/bin/python" ] && python_ok "$VENV/bin/python" && "$VENV/bin/python" -m pip --version >/dev/null 2>&1
}

if [ -n "${CLIPVID_PY:-}" ]; then
  if ! "$CLIPVID_PY" -c 'import torch, torchvision, clip, h5py, av, dask.distributed' >/dev/null 2>&1; then
    echo "error: CLIPVID_PY=$CLIPVID_PY cannot import clipvid's requirements (pip install -r $ROOT/requirements.txt)" >&2
    exit 2
  fi
elif [ ! -f "$STAMP" ]; then
  echo "[setup] creating $VENV and installing requirements (first run only; a few minutes)" >&2
  if [ -e "$VENV" ] && ! venv_ok; then
    echo "[setup] $VENV is incomplete (an earlier set-up stopped half-way): building it again" >&2
    rm -rf "$VENV"
  fi
  if [ ! -e "$VENV" ]; then
    SITE=()
    [ "${CLIPVID_SYSTEM_SITE:-0}" = 1 ] && SITE=(--system-site-packages)
    BASE="$(pick_python)" || exit 2
    if ! "$BASE" -m venv ${SITE[@]+"${SITE[@]}"} "$VENV" || ! venv_ok; then
      rm -rf "$VENV"
      echo "error: could not create $VENV (on Debian or Ubuntu: apt-get install python3-venv)" >&2
      exit 2
    fi
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  # torch first, from the index asked for; then the rest, which keeps any torch in the tested range
  # already installed (requirements.txt) instead of fetching the default CUDA build.
  if [ -n "${CLIPVID_TORCH_INDEX:-}" ]; then
    "$VENV/bin/python" -m pip install -q --index-url "$CLIPVID_TORCH_INDEX" \
      $(grep -E '^(torch|torchvision)[<>=!~ ]' "$ROOT/requirements.txt" | cut -d'#' -f1)
  fi
  "$VENV/bin/python" -m pip install -q -r "$ROOT/requirements.txt"
  # setuptools tells every editable install to beware of same-named folders in the working
  # directory (pip shows it as a BuildBackendWarning); it is expected here, so that one is muted.
  "$VENV/bin/python" -W "ignore:Editable installation" -m pip install -q --no-deps --no-build-isolation \
    -e "$ROOT" >/dev/null
  rm -f "$VENV"/.clipvid-*
  touch "$STAMP"
fi
PY="${CLIPVID_PY:-$VENV/bin/python}"
# ffmpeg: $CLIPVID_FFMPEG, else the static binary from imageio-ffmpeg, else one on PATH.
if ! "$PY" -c "from extract.ffmpeg_bin import check_ffmpeg; check_ffmpeg()" >/dev/null; then
  echo "error: no working ffmpeg; set CLIPVID_FFMPEG or install ffmpeg" >&2
  exit 2
fi
export PY
