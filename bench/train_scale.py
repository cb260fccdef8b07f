"""bench.train_scale: train and evaluate on Kinetics-shaped synthetic caches (10k / 50k / 200k videos).

Usage: python -m bench.train_scale [SIZE ...] [--skip-trained] [--classes C] [--repeats R]   (default
10000 50000 200000, 400 classes, 3 rounds of the read, the baselines and evaluate per size). Caches (N=100, D=512, float16, 80/10/10 splits) are built by streaming into
$CLIPVID_SCALE_DIR (default ~/.cache/clipvid/bench/train_scale, or $CLIPVID_BENCH_CACHE/train_scale), one at a time, and deleted afterwards. The whole run holds
the bench lock; the result file holds the sizes this run measured. `--build-only SIZE ...` only streams
those caches (for a later run to time and delete); `--skip-trained` leaves out the three trained heads,
so evaluate scores the five training-free runs.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List

import numpy as np

from bench import common
from bench.old_layout import schema2_copy
from bench.scale import _remove as remove_cache, disk_bytes
from clipvid.jsonfile import write_json

FRAMES, DIM, CLASSES = 100, 512, 400
SIZES = (10_000, 50_000, 200_000)
# The trained heads only need to exist for evaluate (its work per head does not depend on how well they
# trained): one epoch on 8 frames keeps the 200k size inside the bench's half hour.
TRAINED_ARGS = ["--epochs", "1", "--frames", "8"]
GOALS = {"evaluate_slope": 3.0, "baseline_vs_floor": 1.5, "ooc_overhead": 1.3, "evaluate_rss_growth": 1.3}
RESULT_KEYS = frozenset({"frames", "dim", "classes", "sizes", "goals", "method", "ooc_overhead", "ooc_videos",
                         "baseline_vs_floor", "linear_vs_meanpool", "evaluate_slope", "evaluate_fixed_seconds",
                         "evaluate_rss_growth", "blas_gflops", "ooc_overhead_schema2", "ooc_disk_vs_schema2"})
HEADLINES = tuple(GOALS)


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
    """The same transformer steps (block-shuffled batches) from memory (frames preloaded, untimed) and
    from a cold disk (budget forced to half the frames, every cache page evicted first), on `device`:
    seconds of each and their ratio."""
    import torch
    from cache.reader import open_cache
    from train.data import FrameSource
    from train.loop import FitConfig, fit
    from train.registry import HEADS, build_module
    out = {}
    with open_cache(path) as r:
        rows = np.flatnonzero(r.splits == "train")
        batch = 128
        rows = rows[:steps * batch]                                          # a contiguous stretch of the cache
        labels = r.labels[rows].astype(np.int64)
        text = np.asarray(r.text_emb, np.float32)
        config = {"head": "transformer", "dim": DIM, "frames": FRAMES, "pos_len": FRAMES, "seed": 0,
                  **HEADS["transformer"].defaults}
        need = r.num_videos * FRAMES * DIM * 2
        empty = np.zeros(0, np.int64)
        for name, budget in (("memory", None), ("disk", need // 2)):
            source = FrameSource(r, np.arange(FRAMES), budget if budget else 1 << 62)
            source.get(rows[:1])           # the in-memory path loads the frames here, outside the timed steps
            if name == "disk":             # cold: the disk run reads the disk, not the pages the preload left
                out["evicted_files"] = common.evict_pages(path)
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
    out["steps"], out["batch_size"], out["state"] = steps, batch, "memory preloaded; disk cold (pages evicted)"
    return out


def blas_gflops(rows: int = 512 * FRAMES, classes: int = CLASSES, repeats: int = 5) -> float:
    """GFLOP/s of the vote baseline's product (unit frames [rows, D] @ texts [D, C], float32 numpy, as
    train.baselines.frame_votes runs it), the median of `repeats` after one warm-up."""
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((rows, DIM), dtype=np.float32), rng.standard_normal((DIM, classes), dtype=np.float32)
    x @ t
    secs = []
    for _ in range(repeats):
        start = time.perf_counter()
        x @ t
        secs.append(time.perf_counter() - start)
    return 2 * rows * DIM * classes / common.spread(secs)["median"] / 1e9


def floor_seconds(videos: int, read_seconds: float, gflops: float, classes: int = CLASSES) -> float:
    """The least the four baselines can take: one read of the cache, or the vote's products (every frame of
    every video against every class text) at the measured BLAS rate, whichever is longer."""
    return max(read_seconds, 2 * videos * FRAMES * DIM * classes / (gflops * 1e9))


def _remove(path: str) -> None:
    remove_cache(path)
    if os.path.exists(path + ".build.json"):
        os.remove(path + ".build.json")


def build(videos: int, root: str, classes: int = CLASSES) -> float:
    """Seconds to stream ROOT/scale_<videos>.h5; a cache a `--build-only` run left there is reused."""
    from train.synthetic import stream_synthetic_cache
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, f"scale_{videos}.h5")
    from bench.old_layout import is_current
    if os.path.exists(path) and os.path.exists(path + ".build.json") and is_current(path):
        with open(path + ".build.json") as f:
            return float(json.load(f)["seconds"])
    with common.bench_lock():
        _remove(path)                        # a build that did not finish, or an older clipvid's
        start = time.perf_counter()
        try:
            stream_synthetic_cache(path, videos, classes, FRAMES, DIM, seed=0, progress=False)   # manifest last
        except BaseException:
            _remove(path)
            raise
        seconds = time.perf_counter() - start
    write_json(path + ".build.json", {"seconds": seconds})
    return seconds


def one_size(videos: int, root: str, with_ooc: bool, trained: bool = True, classes: int = CLASSES,
             gflops: float = 0.0, repeats: int = 1) -> Dict[str, object]:
    """Every figure of one cache size: the train commands, then `repeats` rounds of a warm read, the four
    baselines and evaluate (`rounds`; read, baselines and evaluate at the top are the first round's),
    and (with_ooc) the out-of-core steps; the cache and the runs are deleted afterwards."""
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, f"scale_{videos}.h5")
    runs, report = os.path.join(root, f"runs_{videos}"), os.path.join(root, f"report_{videos}")
    old = os.path.join(root, f"scale_{videos}-schema2.h5")
    res: Dict[str, object] = {"videos": videos}
    try:
        res["build_seconds"] = build(videos, root, classes)
        res["cache_gib"] = disk_bytes(path) / 2 ** 30
        from train.registry import BASELINES, PROBE, TRAINED
        train = ["-m", "train", path, "--quiet", "--out", runs]
        sequential_read(path)                                             # same page-cache state for all
        res["meanpool"] = _timed([*train, "--head", "meanpool"])
        res["linear"] = _timed([*train, "--head", PROBE])
        if trained:
            res["trained"] = _timed([*train, "--head", ",".join(TRAINED), *TRAINED_ARGS])
        res["rounds"] = []
        for _ in range(repeats):
            shutil.rmtree(report, ignore_errors=True)
            rnd = {"read": {**sequential_read(path), "load_average_before": _load()},
                   "baselines": _timed([*train, "--head", ",".join(BASELINES)]),          # replaces the meanpool run
                   "evaluate": _timed(["-m", "evaluate", path, "--runs", runs, "--out", report, "--quiet"])}
            rnd["floor_seconds"] = floor_seconds(videos, rnd["read"]["seconds"], gflops, classes)
            rnd["baseline_vs_floor"] = rnd["baselines"]["seconds"] / rnd["floor_seconds"]
            res["rounds"].append(rnd)
        res.update({k: res["rounds"][0][k] for k in ("read", "baselines", "evaluate", "floor_seconds")})
        if with_ooc:   # side by side with the same videos in the schema-2 layout (raw shard files)
            schema2_copy(path, old)
            res["ooc"] = {**ooc_overhead(path), "load_average_before": _load()}
            res["ooc_schema2"] = ooc_overhead(old)
            res["ooc"]["vs_schema2"] = res["ooc"]["disk"]["seconds"] / res["ooc_schema2"]["disk"]["seconds"]
        with open(os.path.join(report, "metrics.json")) as f:
            res["evaluate_heads"] = len(json.load(f)["heads"])
        res["baseline_vs_floor"] = common.spread([r["baseline_vs_floor"] for r in res["rounds"]])["median"]
        res["linear_vs_meanpool"] = res["linear"]["seconds"] / res["meanpool"]["seconds"]
        print(f"train_scale {videos}: {res}", flush=True)
    finally:
        _remove(path)
        _remove(old)
        shutil.rmtree(runs, ignore_errors=True)
        shutil.rmtree(report, ignore_errors=True)
    return res


def main(argv: List[str] = None) -> dict:
    args = list(argv if argv is not None else sys.argv[1:])
    root = os.environ.get("CLIPVID_SCALE_DIR") or common.cache_dir("train_scale")
    if args[:1] == ["--build-only"]:  # make caches ahead of a run (it reuses them, then deletes them)
        for videos in map(int, args[1:]):
            print(f"built {videos} videos in {build(videos, root):.0f} s", flush=True)
        return {}
    trained = "--skip-trained" not in args      # evaluate the five training-free runs only (faster)
    classes = CLASSES
    if "--classes" in args:                     # fewer classes: the smoke test's tiny caches
        i = args.index("--classes")
        classes = int(args.pop(i + 1))
        args.pop(i)
    repeats = 3
    if "--repeats" in args:                     # rounds of read, baselines and evaluate per size
        i = args.index("--repeats")
        repeats = int(args.pop(i + 1))
        args.pop(i)
    sizes = sorted(int(a) for a in args if a != "--skip-trained") or list(SIZES)
    run = common.Run("train_scale", RESULT_KEYS)
    res: Dict[str, object] = {"frames": FRAMES, "dim": DIM, "classes": classes, "sizes": {},
                              "blas_gflops": blas_gflops(classes=classes)}
    for videos in sizes:
        res["sizes"][str(videos)] = one_size(videos, root, videos == sizes[0], trained, classes, res["blas_gflops"],
                                             repeats)
    summarise(res, run)
    run.write(res, state={"read, train, evaluate": "warm (the cache read once untimed first)",
                          "ooc_overhead": "memory preloaded, disk cold (pages evicted)"}, repeats=repeats)
    _print_table(res["sizes"])
    return res


def summarise(res: Dict[str, object], run: common.Run) -> None:
    """The headlines: ooc at the smallest size, the baselines' floor and the linear probe at the middle
    one (50,000 in a full run), and evaluate's slope and RSS growth between the two largest sizes."""
    sizes = [res["sizes"][k] for k in sorted(res["sizes"], key=int)]
    if "ooc" in sizes[0]:
        res["ooc_overhead"], res["ooc_videos"] = sizes[0]["ooc"]["ooc_overhead"], sizes[0]["videos"]
        run.headline("ooc_overhead", [res["ooc_overhead"]])
        if "ooc_schema2" in sizes[0]:   # the same steps on a schema-2 copy of the cache, for comparison
            res["ooc_overhead_schema2"] = sizes[0]["ooc_schema2"]["ooc_overhead"]
            res["ooc_disk_vs_schema2"] = sizes[0]["ooc"]["vs_schema2"]
    mid = sizes[len(sizes) // 2] if len(sizes) > 2 else sizes[-1]
    res["baseline_vs_floor"] = run.headline("baseline_vs_floor", [r["baseline_vs_floor"] for r in mid["rounds"]])
    res["linear_vs_meanpool"] = mid["linear_vs_meanpool"]     # reported, not held on the CPU (the GPU's is the goal)
    if len(sizes) >= 2:
        small, big = sizes[-2], sizes[-1]
        pairs = [(b["evaluate"]["seconds"] - s["evaluate"]["seconds"], b["read"]["seconds"] - s["read"]["seconds"],
                  s) for s, b in zip(small["rounds"], big["rounds"])]
        slopes = [(d_eval / d_read, s) for d_eval, d_read, s in pairs if d_read > 0]
        if slopes:     # round by round: round i of the smaller size against round i of the larger
            res["evaluate_slope"] = run.headline("evaluate_slope", [k for k, _ in slopes])
            res["evaluate_fixed_seconds"] = common.spread(
                [s["evaluate"]["seconds"] - k * s["read"]["seconds"] for k, s in slopes])["median"]
        res["evaluate_rss_growth"] = run.headline(
            "evaluate_rss_growth", [big["evaluate"]["peak_rss_mib"] / small["evaluate"]["peak_rss_mib"]])
    res["goals"] = dict(GOALS)
    res["method"] = ("caches streamed by train.synthetic.stream_synthetic_cache; every figure is a `python -m "
                     "train` / `python -m evaluate` child end to end (wall, CPU, peak RSS, load average before). "
                     "evaluate_slope: (evaluate s at the largest size - at the next) / (sequential "
                     "CacheReader.iter_emb read of the one - of the other); evaluate_fixed_seconds: what is left "
                     "of the smaller evaluate beyond slope x its read (few-shot refits, t-SNE, process start). "
                     "baseline_vs_floor: the four baselines' command over max(read, the vote's 2*V*N*D*C products "
                     "at blas_gflops measured in this run). ooc_overhead: the same transformer steps from memory "
                     "(preloaded) and from a cold disk (budget forced to half the frames, pages evicted); ooc_overhead_schema2 "
                     "the same on a schema-2 copy (raw shard files), ooc_disk_vs_schema2 their from-disk seconds' ratio. "
                     "linear_vs_meanpool is reported, not held, on the CPU. evaluate scores "
                     f"the baselines and linear, plus lstm/transformer/xclip trained {' '.join(TRAINED_ARGS)} "
                     "unless --skip-trained")


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
