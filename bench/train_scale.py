"""bench.train_scale: train and evaluate on Kinetics-shaped synthetic caches (10k / 50k / 200k videos).

Usage: python -m bench.train_scale [SIZE ...]   (default 10000 50000 200000). Caches (N=100, D=512,
float16, 400 classes, 80/10/10 splits) are built by streaming into $CLIPVID_SCALE_DIR (default
~/.cache/clipvid/bench/train_scale, or $CLIPVID_BENCH_CACHE/train_scale), one at a time, and deleted afterwards. With $CLIPVID_BENCH_LOCK naming a lock file, each
cache is built and the trained heads fitted under a shared flock of it and the timed steps run under two
exclusive holds per size; sizes measured earlier stay in the result file. `--build-only SIZE ...`
only streams those caches (for a later run to time and delete); `--skip-trained` leaves out the three
trained heads, so evaluate scores the five training-free runs.
"""
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List

import numpy as np

from bench import common
from clipvid.jsonfile import write_json

FRAMES, DIM, CLASSES = 100, 512, 400
SIZES = (10_000, 50_000, 200_000)
BASELINES = "meanpool,maxpool,vote,midframe"
TRAINED = "lstm,transformer,xclip"
# The trained heads only need to exist for evaluate (its work per head does not depend on how well they
# trained): one epoch on 8 frames keeps the 200k size inside the bench's half hour.
TRAINED_ARGS = ["--epochs", "1", "--frames", "8"]


@contextlib.contextmanager
def _lock(exclusive: bool):
    """Hold $CLIPVID_BENCH_LOCK (shared or exclusive) for the block; no-op when it is not set."""
    path = os.environ.get("CLIPVID_BENCH_LOCK")
    if not path:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _load() -> List[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _timed(args: List[str]) -> Dict[str, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one `python -m ...` child, with the load average."""
    load = _load()
    out = {**_child(args), "load_average_before": load}
    print(f"  {' '.join(args)}: {out}", flush=True)   # a run that is stopped still shows what it measured
    return out


def _vm_hwm_kib(pid: int) -> int:
    """The process's own peak resident set (VmHWM, KiB); 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:")), 0)
    except OSError:
        return 0


def _child(args: List[str]) -> Dict[str, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one `python -m ...` child.

    The peak is the child's own VmHWM, polled: wait4's ru_maxrss is not, since Linux carries the
    parent's high-water mark across fork and exec (a 13 MiB child of this bench read as its parent's
    1.4 GiB), which made every child look as big as the bench process had ever been."""
    import threading
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=common.REPO)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=common.REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak, done = [0], threading.Event()

    def poll() -> None:
        while not done.wait(0.02):    # a high-water mark: only growth in the last 20 ms can be missed
            peak[0] = max(peak[0], _vm_hwm_kib(proc.pid))
    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    watcher.join()
    wall = time.perf_counter() - start
    err = proc.stderr.read()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise RuntimeError(f"{' '.join(args)} failed: {err[-2000:]}")
    return {"seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mib": peak[0] / 1024}


def sequential_read(path: str) -> Dict[str, float]:
    """One pass over /frames/emb through CacheReader.iter_emb: the floor every scan is measured against."""
    from cache.reader import open_cache
    start, cpu = time.perf_counter(), time.process_time()
    with open_cache(path) as r:
        total = sum(int(b.nbytes) for _, b in r.iter_emb(512))
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu, "bytes": total}


def ooc_overhead(path: str, steps: int = 20, device: str = "cpu") -> Dict[str, float]:
    """The same transformer steps (block-shuffled batches) from disk with the budget forced to half
    the frames, and from memory, on `device`: seconds of each and their ratio."""
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
            source.get(rows[:1])           # the in-memory path loads the frames here, outside the timed steps
            torch.manual_seed(0)
            cfg = FitConfig(epochs=1, batch_size=batch, lr=config["lr"], weight_decay=config["weight_decay"])
            cpu = time.process_time()
            res = fit(build_module(config), source, rows, labels, empty, empty, text, cfg, torch.device(device),
                      progress=False)
            out[name] = {"seconds": res.seconds, "cpu_seconds": time.process_time() - cpu,
                         "in_memory": source.in_memory}
            del source
    out["ooc_overhead"] = out["disk"]["seconds"] / out["memory"]["seconds"]
    out["ooc_overhead_cpu"] = out["disk"]["cpu_seconds"] / out["memory"]["cpu_seconds"]
    out["steps"], out["batch_size"] = steps, batch
    return out


def build(videos: int, root: str) -> float:
    """Seconds to stream ROOT/scale_<videos>.h5; a cache a `--build-only` run left there is reused."""
    from train.synthetic import stream_synthetic_cache
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, f"scale_{videos}.h5")
    if os.path.exists(path) and os.path.exists(path + ".build.json"):
        with open(path + ".build.json") as f:
            return float(json.load(f)["seconds"])
    with _lock(False):
        start = time.perf_counter()
        stream_synthetic_cache(path, videos, CLASSES, FRAMES, DIM, seed=0, progress=False)   # whole or absent
        seconds = time.perf_counter() - start
    write_json(path + ".build.json", {"seconds": seconds})
    return seconds


def one_size(videos: int, root: str, with_ooc: bool, trained: bool = True) -> Dict[str, object]:
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, f"scale_{videos}.h5")
    runs, report = os.path.join(root, f"runs_{videos}"), os.path.join(root, f"report_{videos}")
    res: Dict[str, object] = {"videos": videos}
    try:
        res["build_seconds"] = build(videos, root)
        res["cache_gib"] = os.path.getsize(path) / 2 ** 30
        train = ["-m", "train", path, "--quiet", "--out", runs]
        with _lock(True):   # two exclusive holds per size (each a few minutes), not one per step
            sequential_read(path)                                             # same page-cache state for all
            res["read"] = {**sequential_read(path), "load_average_before": _load()}
            res["meanpool"] = _timed([*train, "--head", "meanpool"])
            res["baselines"] = _timed([*train, "--head", BASELINES])     # replaces the meanpool run
            res["linear"] = _timed([*train, "--head", "linear"])
        if trained:
            with _lock(False):
                res["trained"] = _timed([*train, "--head", TRAINED, *TRAINED_ARGS])
        with _lock(True):
            res["evaluate"] = _timed(["-m", "evaluate", path, "--runs", runs, "--out", report, "--quiet"])
            if with_ooc:
                res["ooc"] = {**ooc_overhead(path), "load_average_before": _load()}
        with open(os.path.join(report, "metrics.json")) as f:
            res["evaluate_heads"] = len(json.load(f)["heads"])
        res["baseline_vs_scan"] = res["baselines"]["seconds"] / res["read"]["seconds"]
        res["linear_vs_meanpool"] = res["linear"]["seconds"] / res["meanpool"]["seconds"]
        res["evaluate_vs_scan"] = res["evaluate"]["seconds"] / res["read"]["seconds"]
        print(f"train_scale {videos}: {res}", flush=True)
    finally:
        for p in (path, path + ".part", path + ".build.json"):
            if os.path.exists(p):
                os.remove(p)
        shutil.rmtree(runs, ignore_errors=True)
        shutil.rmtree(report, ignore_errors=True)
    return res


def main(argv: List[str] = None) -> dict:
    args = list(argv if argv is not None else sys.argv[1:])
    root = os.environ.get("CLIPVID_SCALE_DIR") or common.cache_dir("train_scale")
    if args[:1] == ["--build-only"]:  # make the next size's cache ahead, while something else is timed
        for videos in map(int, args[1:]):
            print(f"built {videos} videos in {build(videos, root):.0f} s", flush=True)
        return {}
    trained = "--skip-trained" not in args      # evaluate the five training-free runs only (faster)
    sizes = [int(a) for a in args if a != "--skip-trained"] or list(SIZES)
    res: Dict[str, object] = {"frames": FRAMES, "dim": DIM, "classes": CLASSES, "sizes": _earlier()}
    for videos in sizes:
        measured = one_size(videos, root, with_ooc=videos == min(SIZES), trained=trained)
        res["sizes"] = {**_earlier(), **res["sizes"], str(videos): measured}  # another invocation may have written
        _summarise(res)
        common.write_result("train_scale", res)  # after every size: a long run that is stopped keeps what it measured
    _print_table(res["sizes"])
    return res


def _earlier() -> Dict[str, dict]:
    """Sizes a previous invocation measured with this bench's current steps (kept, so sizes can run apart)."""
    try:
        with open(os.path.join(common.RESULTS, "train_scale.json")) as f:
            sizes = json.load(f).get("sizes", {})
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in sizes.items() if "evaluate" in v}


def _summarise(res: Dict[str, object]) -> None:
    sizes_done = res["sizes"]
    small = str(min(SIZES))
    if small in sizes_done and "ooc" in sizes_done[small]:
        res["ooc_overhead"], res["ooc_videos"] = sizes_done[small]["ooc"]["ooc_overhead"], int(small)
    for key in ("baseline_vs_scan", "linear_vs_meanpool", "evaluate_vs_scan"):
        if "50000" in sizes_done:
            res[key] = sizes_done["50000"][key]
    if "50000" in sizes_done and "200000" in sizes_done:
        res["evaluate_rss_growth"] = (sizes_done["200000"]["evaluate"]["peak_rss_mib"]
                                      / sizes_done["50000"]["evaluate"]["peak_rss_mib"])
    res["goals"] = {"ooc_overhead": 1.3, "baseline_vs_scan": 1.5, "linear_vs_meanpool": 3.0,
                    "evaluate_vs_scan": 3.0, "evaluate_rss_growth": 1.3}
    res["method"] = ("caches streamed by train.synthetic.stream_synthetic_cache; every figure is a `python -m "
                     "train` / `python -m evaluate` child end to end (wall, CPU, peak RSS, load average "
                     "before), against one sequential CacheReader.iter_emb read of the same cache; evaluate "
                     "scores eight runs (four baselines, linear, and lstm/transformer/xclip trained "
                     f"{' '.join(TRAINED_ARGS)}); ooc_overhead: the same transformer steps from disk (budget "
                     "forced to half the frames) and from memory")


def _print_table(sizes_done: Dict[str, dict]) -> None:
    rows = []
    for v, r in sizes_done.items():
        rows.append((v, f"{r['cache_gib']:.1f}", f"{r['read']['seconds']:.1f}", f"{r['meanpool']['seconds']:.1f}",
                     f"{r['baselines']['seconds']:.1f}", f"{r['linear']['seconds']:.1f}",
                     f"{r['evaluate']['seconds']:.1f} s, {r['evaluate']['peak_rss_mib']:.0f} MiB, "
                     f"{r['evaluate_heads']} heads"))
    print(common.table(["videos", "GiB", "read s", "meanpool s", "4 baselines s", "linear s", "evaluate"], rows))


if __name__ == "__main__":
    common.exit_on_help(__doc__)
    main()
