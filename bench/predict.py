"""bench.predict: predict on 200 demo clips against extracting them; timeline of 10,000 cached videos against one read."""
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List

import numpy as np

from bench import common

CLIPS_PER_CLASS = 17           # x 12 demo classes = 204 clips
VIDEOS, FRAMES, DIM, CLASSES = 10_000, 100, 512, 25
WORK = os.path.join("/work", "tmp", "wt10", "bench") if os.path.isdir("/work/tmp") else None


def _cli(*args: str) -> float:
    """Wall seconds of `python -m ...` as a user runs it (progress off)."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    t = time.perf_counter()
    out = subprocess.run([sys.executable, *args], cwd=common.REPO, capture_output=True, text=True, env=env)
    if out.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(args)} exited {out.returncode}: {out.stderr[-800:]}")
    return time.perf_counter() - t


def predict_overhead(work: str, workers: int) -> Dict[str, float]:
    """Seconds of predict on a fresh folder (extraction included) over seconds of extract on it."""
    clips = os.path.join(work, "clips")
    _cli("-m", "extract.synthetic", clips, "--per-class", str(CLIPS_PER_CLASS), "--seed", "3")
    base = os.path.join(work, "extract.h5")
    extract_s = _cli("-m", "extract", clips, "--out", base, "--clip-model", "random:tiny", "--no-progress",
                     "--workers", str(workers))
    runs = os.path.join(work, "runs")
    _cli("-m", "train", base, "--head", "transformer", "--epochs", "5", "--out", runs, "--quiet")
    pred = os.path.join(work, "pred")
    predict_s = _cli("-m", "predict", clips, "--run", os.path.join(runs, "transformer"), "--out", pred,
                     "--workers", str(workers), "--quiet")
    timeline_s = _cli("-m", "predict", clips, "--run", os.path.join(runs, "transformer"), "--out", pred + "-t",
                      "--cache", os.path.join(pred, "cache.h5"), "--timeline", "--quiet")
    return {"clips": 12 * CLIPS_PER_CLASS, "workers": workers, "extract_seconds": extract_s,
            "predict_seconds": predict_s, "predict_overhead": predict_s / extract_s,
            "timeline_on_cached_seconds": timeline_s}


def _write_cache(path: str) -> None:
    """10,000 synthetic videos written through the real CacheWriter in blocks (never all in memory)."""
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
        for v in range(VIDEOS):
            c = v % CLASSES
            emb = (text[c] + 0.5 * rng.standard_normal((FRAMES, DIM)) / np.sqrt(DIM)).astype(np.float16)
            writer.add_video(f"{names[c]}/{v:06d}.mp4", emb, times, names[c], n_distinct=FRAMES, duration=10.0,
                             fps=25.0)
    finally:
        writer.close()


def timeline_vs_scan(work: str, heads: List[str]) -> Dict[str, object]:
    """`python -m predict CACHE --timeline` per head against one sequential read of every embedding."""
    path = os.path.join(work, "timeline.h5")
    t = time.perf_counter()
    _write_cache(path)
    write_s = time.perf_counter() - t
    runs = os.path.join(work, "runs10k")
    _cli("-m", "train", path, "--head", ",".join(heads), "--epochs", "1", "--out", runs, "--quiet")
    from cache.reader import open_cache
    t = time.perf_counter()
    with open_cache(path) as reader:
        total = sum(float(block[:, 0, 0].sum()) for _, block in reader.iter_emb(256))  # touch every block
    scan_s = time.perf_counter() - t
    out: Dict[str, object] = {"videos": VIDEOS, "frames": FRAMES, "dim": DIM, "write_seconds": write_s,
                              "scan_seconds": scan_s, "checksum": total}
    for head in heads:
        secs = _cli("-m", "predict", path, "--run", os.path.join(runs, head), "--out", os.path.join(work, f"t-{head}"),
                    "--timeline", "--quiet")
        out[head] = {"timeline_seconds": secs, "timeline_vs_scan": secs / scan_s}
    out["timeline_vs_scan"] = out[heads[0]]["timeline_vs_scan"]
    return out


def main() -> None:
    work = os.path.join(WORK or common.cache_dir("predict"), "run")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    try:
        overhead = predict_overhead(work, workers=2)
        timeline = timeline_vs_scan(work, ["meanpool", "transformer"])
    finally:
        shutil.rmtree(work, ignore_errors=True)   # 1 GB cache and 200 clips: never left behind
    result = {"predict_overhead": overhead["predict_overhead"], "timeline_vs_scan": timeline["timeline_vs_scan"],
              "overhead": overhead, "timeline": timeline,
              "goals": {"predict_overhead": "<= 1.15", "timeline_vs_scan": "<= 3 (meanpool head)"}}
    print(common.table(["figure", "value", "goal"], [
        ["predict / extract, 204 demo clips (predict_overhead)", overhead["predict_overhead"], "<= 1.15"],
        ["timeline of 10,000 videos / one read, meanpool (timeline_vs_scan)", timeline["timeline_vs_scan"], "<= 3"],
        ["the same, transformer", timeline["transformer"]["timeline_vs_scan"], ""]]))
    print(common.write_result("predict", result))


if __name__ == "__main__":
    main()
