"""bench.train_scale: train and evaluate on Kinetics-shaped synthetic caches (10k / 50k / 200k videos).

Usage: python -m bench.train_scale [SIZE ...]   (default 10000 50000 200000; run it under
`flock /work/bench.lock`). Caches (N=100, D=512, float16, 400 classes, 80/10/10 splits) are built by
streaming into $CLIPVID_SCALE_DIR (default /work/tmp/12), one at a time, and deleted afterwards.
"""
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List

import numpy as np

from bench import common

FRAMES, DIM, CLASSES = 100, 512, 400
SIZES = (10_000, 50_000, 200_000)
BASELINES = "meanpool,maxpool,vote,midframe"
EIGHT = "midframe,meanpool,maxpool,vote,linear,lstm,transformer,xclip"


def _timed(args: List[str]) -> Dict[str, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one `python -m ...` child."""
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=common.REPO)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=common.REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise RuntimeError(f"{' '.join(args)} failed: {err[-2000:]}")
    return {"seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024}


def sequential_read(path: str) -> Dict[str, float]:
    """One pass over /frames/emb through CacheReader.iter_emb: the floor every scan is measured against."""
    from cache.reader import open_cache
    start, cpu = time.perf_counter(), time.process_time()
    with open_cache(path) as r:
        total = sum(int(b.nbytes) for _, b in r.iter_emb(512))
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu, "bytes": total}


def ooc_overhead(path: str, steps: int = 40) -> Dict[str, float]:
    """The same transformer steps (block-shuffled batches) from disk with the budget forced to half
    the frames, and from memory: seconds of each and their ratio."""
    import torch
    from cache.reader import open_cache
    from train.data import FrameSource
    from train.heads import HEAD_DEFAULTS
    from train.loop import FitConfig, fit
    from train.registry import build_module
    out = {}
    with open_cache(path) as r:
        rows = np.flatnonzero(r.splits == "train")
        batch = 128
        rows = rows[:steps * batch]                                          # a contiguous stretch of the cache
        labels = r.labels[rows].astype(np.int64)
        text = np.asarray(r.text_emb, np.float32)
        config = {"head": "transformer", "dim": DIM, "frames": FRAMES, "pos_len": FRAMES, "seed": 0,
                  **HEAD_DEFAULTS["transformer"]}
        need = r.num_videos * FRAMES * DIM * 2
        empty = np.zeros(0, np.int64)
        for name, budget in (("memory", None), ("disk", need // 2)):
            source = FrameSource(r, np.arange(FRAMES), budget if budget else 1 << 62)
            torch.manual_seed(0)
            cfg = FitConfig(epochs=1, batch_size=batch, lr=config["lr"], weight_decay=config["weight_decay"])
            cpu = time.process_time()
            res = fit(build_module(config), source, rows, labels, empty, empty, text, cfg, torch.device("cpu"),
                      progress=False)
            out[name] = {"seconds": res.seconds, "cpu_seconds": time.process_time() - cpu,
                         "in_memory": source.in_memory}
            del source
    out["ooc_overhead"] = out["disk"]["seconds"] / out["memory"]["seconds"]
    out["ooc_overhead_cpu"] = out["disk"]["cpu_seconds"] / out["memory"]["cpu_seconds"]
    out["steps"], out["batch_size"] = steps, batch
    return out


def one_size(videos: int, root: str, with_ooc: bool) -> Dict[str, object]:
    from train.synthetic import stream_synthetic_cache
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, f"scale_{videos}.h5")
    runs, report = os.path.join(root, f"runs_{videos}"), os.path.join(root, f"report_{videos}")
    res: Dict[str, object] = {"videos": videos}
    try:
        start = time.perf_counter()
        stream_synthetic_cache(path, videos, CLASSES, FRAMES, DIM, seed=0, progress=False)
        res["build_seconds"] = time.perf_counter() - start
        res["cache_gib"] = os.path.getsize(path) / 2 ** 30
        sequential_read(path)                                                 # same page-cache state for all
        res["read"] = sequential_read(path)
        cache = [path, "--quiet", "--out"]
        res["meanpool"] = _timed(["-m", "train", *cache, os.path.join(runs, "one"), "--head", "meanpool"])
        res["baselines"] = _timed(["-m", "train", *cache, os.path.join(runs, "four"), "--head", BASELINES])
        res["linear"] = _timed(["-m", "train", *cache, os.path.join(runs, "linear"), "--head", "linear"])
        res["evaluate_one"] = _timed(["-m", "evaluate", path, "--runs", os.path.join(runs, "one"), "--out",
                                      report, "--quiet"])
        res["baseline_vs_scan"] = res["baselines"]["seconds"] / res["read"]["seconds"]
        res["linear_vs_meanpool"] = res["linear"]["seconds"] / res["meanpool"]["seconds"]
        if with_ooc:
            res["ooc"] = ooc_overhead(path)
        print(f"train_scale {videos}: {res}", flush=True)
    finally:
        for p in (path, path + ".part"):
            if os.path.exists(p):
                os.remove(p)
        shutil.rmtree(runs, ignore_errors=True)
        shutil.rmtree(report, ignore_errors=True)
    return res


def main(argv: List[str] = None) -> dict:
    sizes = [int(a) for a in (argv if argv is not None else sys.argv[1:])] or list(SIZES)
    root = os.environ.get("CLIPVID_SCALE_DIR", "/work/tmp/12")
    res: Dict[str, object] = {"frames": FRAMES, "dim": DIM, "classes": CLASSES, "sizes": {}}
    for i, videos in enumerate(sizes):
        res["sizes"][str(videos)] = one_size(videos, root, with_ooc=i == 0)
        _summarise(res, sizes[0])
        common.write_result("train_scale", res)  # after every size: a long run that is stopped keeps what it measured
    _print_table(res["sizes"])
    return res


def _summarise(res: Dict[str, object], first_size: int) -> None:
    sizes_done = res["sizes"]
    first = sizes_done[str(first_size)]
    res["ooc_overhead"], res["ooc_videos"] = first["ooc"]["ooc_overhead"], first_size
    if "50000" in sizes_done:
        res["baseline_vs_scan"] = sizes_done["50000"]["baseline_vs_scan"]
        res["linear_vs_meanpool"] = sizes_done["50000"]["linear_vs_meanpool"]
    if "50000" in sizes_done and "200000" in sizes_done:
        res["evaluate_rss_growth"] = (sizes_done["200000"]["evaluate_one"]["peak_rss_mib"]
                                      / sizes_done["50000"]["evaluate_one"]["peak_rss_mib"])
    res["goals"] = {"ooc_overhead": 1.3, "baseline_vs_scan": 1.5, "linear_vs_meanpool": 3.0,
                    "evaluate_rss_growth": 1.3}
    res["method"] = ("caches streamed by train.synthetic.stream_synthetic_cache; every figure is a `python -m "
                     "train` / `python -m evaluate` child end to end (wall, CPU, peak RSS), against one "
                     "sequential CacheReader.iter_emb read of the same cache just before; ooc_overhead: the "
                     "same transformer steps from disk (budget forced to half the frames) and from memory")


def _print_table(sizes_done: Dict[str, dict]) -> None:
    rows = []
    for v, r in sizes_done.items():
        rows.append((v, f"{r['cache_gib']:.1f}", f"{r['read']['seconds']:.1f}", f"{r['meanpool']['seconds']:.1f}",
                     f"{r['baselines']['seconds']:.1f}", f"{r['linear']['seconds']:.1f}",
                     f"{r['evaluate_one']['seconds']:.1f} s, {r['evaluate_one']['peak_rss_mib']:.0f} MiB"))
    print(common.table(["videos", "GiB", "read s", "meanpool s", "4 baselines s", "linear s", "evaluate"], rows))


if __name__ == "__main__":
    main()
