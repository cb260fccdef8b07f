"""bench.predict: predict on 204 demo clips against extracting them; how a timeline's time grows from 1,000 to
10,000 cached videos against how one read's does."""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from bench import common

CLIPS_PER_CLASS = 17           # x 12 demo classes = 204 clips
VIDEOS, FRAMES, DIM, CLASSES = 10_000, 100, 512, 25
SLOPE_SIZES = (1_000, VIDEOS)  # timeline_slope: the growth between these two cache sizes
PAIRS = 3                      # interleaved extract/predict pairs, and timeline repeats
# Where the caches and the runs go: $CLIPVID_SCALE_DIR, else the bench cache folder.
WORK = os.environ.get("CLIPVID_SCALE_DIR") or None
# A Python process and the command's imports: the start every command pays, reported beside the slope.
IMPORTS = "import torch, h5py, numpy, predict.run, predict.score, train.api, train.checkpoint\n"
RESULT_KEYS = frozenset({"predict_overhead", "timeline_slope", "overhead", "timeline", "goals", "method"})
HEADLINES = ("predict_overhead", "timeline_slope")


def _cli(*args: str) -> float:
    """Wall seconds of `python -m ...` as a user runs it (progress off)."""
    return _python(*args)[0]


def _python(*args: str) -> Tuple[float, str]:
    """(wall seconds, stdout) of the Python interpreter run with these arguments."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    t = time.perf_counter()
    out = subprocess.run([sys.executable, *args], cwd=common.REPO, capture_output=True, text=True, env=env)
    if out.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(args)} exited {out.returncode}: {out.stderr[-800:]}")
    return time.perf_counter() - t, out.stdout


def _scan(path: str) -> float:
    """Seconds of one sequential read of every embedding (iter_emb), touching each block."""
    from cache.reader import open_cache
    t = time.perf_counter()
    with open_cache(path) as reader:
        for _, block in reader.iter_emb(256):
            float(block[:, 0, 0].sum())
    return time.perf_counter() - t


def predict_overhead(work: str, workers: int, per_class: int = CLIPS_PER_CLASS, pairs: int = PAIRS) -> Dict[str, object]:
    """Seconds of predict on a fresh folder (extraction included) over seconds of extract on it, for
    `pairs` interleaved pairs (each into new output folders); the ratio of each pair."""
    clips = os.path.join(work, "clips")
    _cli("-m", "extract.synthetic", clips, "--per-class", str(per_class), "--seed", "3")
    extract = lambda out: _cli("-m", "extract", clips, "--out", out, "--clip-model", "random:tiny",  # noqa: E731
                               "--no-progress", "--workers", str(workers))
    base, runs = os.path.join(work, "extract.h5"), os.path.join(work, "runs")
    extract(base)
    _cli("-m", "train", base, "--head", "transformer", "--epochs", "5", "--out", runs, "--quiet")
    run = glob.glob(os.path.join(runs, "transformer-*", "seed0"))[0]
    out: Dict[str, object] = {"clips": 12 * per_class, "workers": workers, "extract_seconds": [],
                              "predict_seconds": [], "ratios": []}
    for i in range(pairs):
        e = extract(os.path.join(work, f"pair{i}.h5"))
        p = _cli("-m", "predict", clips, "--run", run, "--out", os.path.join(work, f"pred{i}"),
                 "--workers", str(workers), "--quiet")
        out["extract_seconds"].append(e)
        out["predict_seconds"].append(p)
        out["ratios"].append(p / e)
    out["predict_overhead"] = common.spread(out["ratios"])["median"]
    return out


def _write_cache(path: str, videos: int = VIDEOS) -> None:
    """Synthetic videos written through the real CacheWriter one by one (never all in memory)."""
    from cache import schema as S
    from cache.writer import CacheWriter
    from train.synthetic import class_names
    rng = np.random.default_rng(0)
    names = class_names(CLASSES, 0)
    text = rng.standard_normal((CLASSES, DIM)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    settings = S.make_settings("synthetic:bench", "synthetic-bench", True, DIM, FRAMES, {"kind": "synthetic"}, ["{}"])
    times = np.linspace(0.05, 9.95, FRAMES, dtype=np.float32)
    writer = CacheWriter(path, settings)
    try:
        writer.set_classes(names, text)
        for v in range(videos):
            c = v % CLASSES
            emb = (text[c] + 0.5 * rng.standard_normal((FRAMES, DIM)) / np.sqrt(DIM)).astype(np.float16)
            writer.add_video(f"{names[c]}/{v:06d}.mp4", emb, times, names[c], n_distinct=FRAMES, duration=10.0,
                             fps=25.0)
    finally:
        writer.close()


def timeline_slope(work: str, heads: List[str], sizes=SLOPE_SIZES, repeats: int = PAIRS) -> Dict[str, object]:
    """How `python -m predict CACHE --timeline` grows with the cache: (its seconds at the larger size - at
    the smaller) / (one warm sequential read of the larger - of the smaller), per head, `repeats`
    interleaved rounds; the process start (Python and the command's imports) is reported beside it."""
    caches, runs = {}, {}
    out: Dict[str, object] = {"sizes": list(sizes), "frames": FRAMES, "dim": DIM, "write_seconds": {}}
    for v in sizes:
        caches[v], t = os.path.join(work, f"timeline{v}.h5"), time.perf_counter()
        _write_cache(caches[v], v)
        out["write_seconds"][str(v)] = time.perf_counter() - t
        folder = os.path.join(work, f"runs{v}")
        _cli("-m", "train", caches[v], "--head", ",".join(heads), "--epochs", "1", "--out", folder, "--quiet")
        runs[v] = {h: glob.glob(os.path.join(folder, h + "-*", "seed0"))[0] for h in heads}
        _scan(caches[v])                                      # the cache in the page cache: warm
    small, big = sizes[0], sizes[-1]
    for head in heads:
        fig: Dict[str, List[float]] = {"timeline_seconds_small": [], "timeline_seconds_big": [], "scan_seconds_small": [],
                                       "scan_seconds_big": [], "slopes": []}
        for _ in range(repeats):
            got = {}
            for v, side in ((small, "small"), (big, "big")):
                got[f"scan_seconds_{side}"] = _scan(caches[v])
                got[f"timeline_seconds_{side}"] = _cli("-m", "predict", caches[v], "--run", runs[v][head], "--out",
                                                       os.path.join(work, f"t-{head}-{v}"), "--timeline", "--quiet")
            for k, val in got.items():
                fig[k].append(val)
            fig["slopes"].append((got["timeline_seconds_big"] - got["timeline_seconds_small"])
                                 / (got["scan_seconds_big"] - got["scan_seconds_small"]))
        fig["timeline_slope"] = common.spread(fig["slopes"])["median"]
        out[head] = fig
    out["start_seconds"] = common.spread([_python("-c", IMPORTS)[0] for _ in range(repeats)])["median"]
    out["timeline_slope"] = out[heads[0]]["timeline_slope"]
    return out


def main(argv: Optional[List[str]] = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.predict", description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("overhead", "timeline"),
                    help="run one half (the result file then holds only its figures)")
    ap.add_argument("--per-class", type=int, default=CLIPS_PER_CLASS, help="demo clips per class (default %(default)s)")
    ap.add_argument("--sizes", default=",".join(map(str, SLOPE_SIZES)),
                    help="the two cache sizes of timeline_slope (default %(default)s)")
    ap.add_argument("--pairs", type=int, default=PAIRS, help="interleaved pairs / rounds (default %(default)s)")
    args = ap.parse_args([] if argv is None else argv)   # python -m bench runs main() with no arguments
    run = common.Run("predict", RESULT_KEYS)
    work = os.path.join(WORK or common.cache_dir("predict"), "run")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    result: Dict[str, object] = {"goals": {"predict_overhead": 1.15, "timeline_slope": 3.0}, "method": (
        "predict_overhead: `python -m predict` on a demo folder (extraction included) over `python -m extract` "
        "on it, interleaved pairs into fresh folders, the median ratio; timeline_slope: (the --timeline "
        "command at the larger cache - at the smaller) / (a warm sequential read of the one - of the "
        "other), median of interleaved rounds, meanpool head; start_seconds: a Python process and the "
        "command's imports")}
    try:
        if args.only != "timeline":
            result["overhead"] = predict_overhead(work, 2, args.per_class, args.pairs)
            result["predict_overhead"] = run.headline("predict_overhead", result["overhead"]["ratios"])
        if args.only != "overhead":
            sizes = tuple(int(v) for v in args.sizes.split(","))
            result["timeline"] = timeline_slope(work, ["meanpool", "transformer"], sizes, args.pairs)
            result["timeline_slope"] = run.headline("timeline_slope", result["timeline"]["meanpool"]["slopes"])
    finally:
        shutil.rmtree(work, ignore_errors=True)   # 1 GB cache and 200 clips: never left behind
    print(common.table(["figure", "value", "goal"], [
        ["predict / extract, demo clips (predict_overhead)", result.get("predict_overhead"), "<= 1.15"],
        ["timeline growth over read growth, meanpool, warm (timeline_slope)", result.get("timeline_slope"), "<= 3"],
        ["  process start (Python and imports), s", result.get("timeline", {}).get("start_seconds"), ""],
        ["the same slope, transformer", result.get("timeline", {}).get("transformer", {}).get("timeline_slope"), ""]]))
    print(run.write(result, state="warm (clips and caches in the page cache)", repeats=args.pairs))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
