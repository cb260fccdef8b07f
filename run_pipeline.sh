#!/usr/bin/env bash
# clipvid end to end: set-up if needed, (demo) videos -> cache -> heads -> report.
# Run with no arguments for the built-in demo; ./run_pipeline.sh --help for the options.
set -euo pipefail
# Paths on the command line mean what they mean in the caller's folder: no cd. The checkout this
# script is in is the code that runs (PYTHONPATH), and a folder of the caller's named like a stage
# (train/, predict/) never shadows it (PYTHONSAFEPATH: python -m adds no working folder to sys.path).
ROOT="$(cd "$(dirname "$0")" && pwd)"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONSAFEPATH=1

usage() {
  cat <<'EOT'
usage: run_pipeline.sh [SOURCE] [options]      (from any folder: paths are taken from where you are)

SOURCE            a folder with one sub-folder per class, a path,label CSV or a Kinetics CSV
                  (default: the built-in demo set, rendered into OUT/demo)
--out DIR         where the cache, runs and report go (default: ./out)       [CLIPVID_OUT]
--clip-model M    CLIP name, weights file, random:<arch>, open_clip:ARCH/TAG [CLIPVID_MODEL]
                  (default: ViT-B/32, downloaded on first use; random:tiny when it cannot be had)
--frames N        frames sampled per video (default 100)                     [CLIPVID_FRAMES]
--workers W       Dask worker processes (default: one per core up to 8, or GPU) [CLIPVID_WORKERS]
--scheduler ADDR  an existing Dask scheduler, e.g. tls://host:8786           [CLIPVID_SCHEDULER]
--heads LIST      comma-separated heads, or all (default all)                [CLIPVID_HEADS]
--epochs E        training epochs per head (default: the trainer's)          [CLIPVID_EPOCHS]
--per-class K     demo videos per class (default 24; 4 with real weights and no GPU) [CLIPVID_PER_CLASS]
--retrain         train every head again even if trained on this cache
--quiet           no progress displays (summaries and errors still print)  [CLIPVID_QUIET=1]
-h, --help        this help

Set-up (first run): CLIPVID_PYTHON picks the Python (3.10 or newer); CLIPVID_TORCH_INDEX a torch wheel
index (CPU-only, or a CUDA your driver runs); docs/install.md says more.

A second run does only what is missing: the cache resumes, and heads already trained with
the same settings (frames, epochs) on the same cache are reused. Without real CLIP weights (no internet and nothing in
~/.cache/clip) the demo falls back to random:tiny weights, loudly; a model you name
yourself that cannot be loaded is an error. Exit status: 0 done; 1 report written but some
videos failed; 2 usage error; 3 an unusable input file; 130 interrupted.

examples:
  ./run_pipeline.sh                                   # the demo, end to end, into ./out
  ~/clipvid/run_pipeline.sh videos/ --out out/ --clip-model ViT-B/32 --frames 32
  ./run_pipeline.sh list.csv --heads lstm,transformer --epochs 40 --quiet > log 2>&1
EOT
}

SOURCE="${CLIPVID_SOURCE:-}"
OUT="${CLIPVID_OUT:-out}"
MODEL="${CLIPVID_MODEL:-}"
FRAMES="${CLIPVID_FRAMES:-100}"
WORKERS="${CLIPVID_WORKERS:-}"
SCHEDULER="${CLIPVID_SCHEDULER:-}"
HEADS="${CLIPVID_HEADS:-all}"
EPOCHS="${CLIPVID_EPOCHS:-}"
PER_CLASS="${CLIPVID_PER_CLASS:-24}"
PER_CLASS_GIVEN="${CLIPVID_PER_CLASS:+1}"
RETRAIN=0
QUIET=()
[ "${CLIPVID_QUIET:-0}" = 1 ] && QUIET=(--quiet)
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --out) OUT="$2"; shift 2 ;;
    --clip-model) MODEL="$2"; shift 2 ;;
    --frames) FRAMES="$2"; shift 2 ;;
    --workers) WORKERS="$2"; shift 2 ;;
    --scheduler) SCHEDULER="$2"; shift 2 ;;
    --heads) HEADS="$2"; shift 2 ;;
    --epochs) EPOCHS="$2"; shift 2 ;;
    --per-class) PER_CLASS="$2"; PER_CLASS_GIVEN=1; shift 2 ;;
    --retrain) RETRAIN=1; shift ;;
    --quiet) QUIET=(--quiet); shift ;;
    --) shift; SOURCE="$1"; shift ;;
    -*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) SOURCE="$1"; shift ;;
  esac
done

source "$ROOT/scripts/ensure_env.sh"
mkdir -p "$OUT"

# CLIP weights: ViT-B/32's are downloaded on first use (a progress bar on stderr); the default falls
# back to random:tiny when they cannot be had (offline, or CLIPVID_OFFLINE=1).
if [ -z "$MODEL" ]; then
  if "$PY" -m extract.weights ViT-B/32 >/dev/null; then
    MODEL="ViT-B/32"
  else
    MODEL="random:tiny"
    {
      echo "########################################################################"
      echo "# WARNING: CLIP ViT-B/32 weights are not in ~/.cache/clip and could not"
      echo "# be downloaded. Continuing with RANDOM weights (random:tiny): the"
      echo "# report will measure the heads only, not CLIP. See docs/weights.md."
      echo "########################################################################"
    } >&2
  fi
else
  "$PY" -m extract.weights "$MODEL" >/dev/null || exit 2
fi
# Real weights on a CPU embed ~0.1 videos/s per two cores at N=100 (bench/PERFORMANCE.md): without a GPU
# the demo shrinks to 4 videos per class (about ten minutes) unless a size was asked for.
if [ -z "$SOURCE" ] && [ -z "$PER_CLASS_GIVEN" ] && [ "${MODEL#random:}" = "$MODEL" ] && [ -z "$SCHEDULER" ] \
   && ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  PER_CLASS=4
  echo "# no GPU here: a small demo (4 videos per class, about ten minutes with $MODEL on a CPU); --per-class K for more" >&2
fi

if [ -z "$SOURCE" ]; then
  SOURCE="$OUT/demo"
  if [ ! -f "$SOURCE/pairs.json" ]; then
    echo "[1/4] rendering the demo set into $SOURCE" >&2
    "$PY" -m extract.synthetic "$SOURCE" --per-class "$PER_CLASS" ${QUIET[@]+"${QUIET[@]}"}
  else
    echo "[1/4] demo set already in $SOURCE" >&2
  fi
  NAME=demo
else
  echo "[1/4] source: $SOURCE" >&2
  NAME="$(basename "${SOURCE%/}")"; NAME="${NAME%.*}"
fi

SLUG="$(printf '%s' "$MODEL" | tr -c 'A-Za-z0-9._-' '_')"
CACHE="$OUT/cache/${NAME}-${SLUG}-N${FRAMES}.h5"
RUNS="$OUT/runs/${NAME}-${SLUG}-N${FRAMES}"
REPORT="$OUT/report/${NAME}-${SLUG}-N${FRAMES}"
mkdir -p "$OUT/cache" "$RUNS" "$REPORT"

echo "[2/4] extracting into $CACHE" >&2
EXTRACT=("$PY" -m extract "$SOURCE" --out "$CACHE" --clip-model "$MODEL" --frames "$FRAMES" ${QUIET[@]+"${QUIET[@]}"})
[ -n "$WORKERS" ] && EXTRACT+=(--workers "$WORKERS")
[ -n "$SCHEDULER" ] && EXTRACT+=(--scheduler "$SCHEDULER")
set +e
"${EXTRACT[@]}"
status=$?
set -e
case $status in
  0) ;;
  1) echo "warning: some videos failed (listed above, kept in the cache's /failures); going on" >&2 ;;
  130) exit 130 ;;   # Ctrl-C: extract said what it kept
  *) echo "error: extraction failed (exit $status)" >&2; exit $status ;;
esac
"$PY" -m cache info "$CACHE"

echo "[3/4] training heads ($HEADS) into $RUNS" >&2
# The writer replaces the file whenever it adds anything: size and modification time tell (through
# Python: GNU and BSD stat take different flags).
STAMP="$("$PY" -c 'import os, sys; s = os.stat(sys.argv[1]); print(f"{s.st_size}-{int(s.st_mtime)}")' "$CACHE")"
TRAIN=("$PY" -m train "$CACHE" --out "$RUNS" ${QUIET[@]+"${QUIET[@]}"})
[ -n "$EPOCHS" ] && TRAIN+=(--epochs "$EPOCHS")
# A run is reused only when its folder (named by head and settings) holds a head trained on this very cache.
LISTED="$("${TRAIN[@]}" --head "$HEADS" --list-runs)"
PENDING=()
while IFS=$'\t' read -r head dir; do
  if [ "$RETRAIN" = 0 ] && [ -f "$dir/head.pt" ] && [ "$(cat "$dir/.cache-stamp" 2>/dev/null)" = "$STAMP" ]; then
    echo "      $head: already trained on this cache with these settings ($dir; --retrain to redo)" >&2
  else
    PENDING+=("$head")
  fi
done <<< "$LISTED"
if [ ${#PENDING[@]} -gt 0 ]; then
  "${TRAIN[@]}" --head "$(IFS=,; echo "${PENDING[*]}")"
  while IFS=$'\t' read -r head dir; do echo "$STAMP" > "$dir/.cache-stamp"; done \
    < <("${TRAIN[@]}" --head "$(IFS=,; echo "${PENDING[*]}")" --list-runs)
fi

echo "[4/4] writing the report into $REPORT" >&2
"$PY" -m evaluate "$CACHE" --runs "$RUNS" --out "$REPORT" ${QUIET[@]+"${QUIET[@]}"}

# Use what was trained: the best head labels the test videos again, per video and per moment.
PRED="$OUT/predict/${NAME}-${SLUG}-N${FRAMES}"
BEST="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("best_head") or "")' "$REPORT/metrics.json")"
PAGE=""
# The report names a head by its settings folder (RUNS/<head>-<settings>/seed<k>/): predict with its lowest seed.
BEST_RUN=""
if [ -n "$BEST" ]; then
  # The lowest seed's run (seed2 before seed10), found by Python: find -printf and sort -V are GNU-only.
  BEST_RUN="$("$PY" -c '
import glob, os, re, sys
runs = [os.path.dirname(p) for p in glob.glob(os.path.join(glob.escape(sys.argv[1]), "*", "split.json"))]
runs.sort(key=lambda d: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", os.path.basename(d))])
print(runs[0] if runs else "")' "$RUNS/$BEST")"
fi
if [ -n "$BEST_RUN" ]; then
  echo "[5/5] predicting with the best head ($BEST) on the test videos into $PRED" >&2
  mkdir -p "$PRED"
  "$PY" - "$CACHE" "$BEST_RUN/split.json" "$PRED/test_videos.csv" <<'EOT'
import csv, json, os, sys
from cache.reader import open_cache
cache, split, out = sys.argv[1:]
test = set(json.load(open(split))["test"])
with open_cache(cache) as r:
    root = str(r.settings.get("source_root") or os.path.dirname(os.path.abspath(cache)))
    rows = [(os.path.join(root, v), r.class_names[l] if l >= 0 else "") for v, l in zip(r.ids, r.labels) if v in test]
with open(out, "w", newline="", encoding="utf-8") as f:
    csv.writer(f).writerows([("path", "label")] + rows)
EOT
  PREDICT=("$PY" -m predict "$PRED/test_videos.csv" --run "$BEST_RUN" --out "$PRED" --html ${QUIET[@]+"${QUIET[@]}"})
  [ -n "$WORKERS" ] && PREDICT+=(--workers "$WORKERS")
  [ -n "$SCHEDULER" ] && PREDICT+=(--scheduler "$SCHEDULER")
  set +e
  "${PREDICT[@]}"
  pstatus=$?
  set -e
  [ $pstatus -le 1 ] && PAGE="$(cd "$PRED" && pwd)/timeline.html"
fi
echo
echo "report: $(cd "$REPORT" && pwd)/report.html"
if [ -n "$PAGE" ]; then echo "predictions: $PAGE"; fi
exit "$status"   # 1 when some videos failed
