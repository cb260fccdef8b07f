"""bench.memory: peak RSS of an extraction over 100 and over 1,000 short videos (it must not grow)."""
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List

from bench import common

SIZES = (100, 1000)
RESULT_KEYS = frozenset({"runs", "rss_growth", "goals", "method"})
HEADLINES = ("rss_growth",)


def _tree_rss(pid: int) -> Dict[int, int]:
    import psutil
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    out = {}
    for p in procs:
        try:
            out[p.pid] = p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return out


def _extract_peak(files: List[str]) -> Dict[str, float]:
    """Run `python -m extract` (2 workers, random:tiny) and sample the RSS of its process tree."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src", "clips")
        os.makedirs(src)
        for i, f in enumerate(files):
            os.symlink(f, os.path.join(src, f"{i:05d}_{os.path.basename(f)}"))
        proc = subprocess.Popen([sys.executable, "-m", "extract", os.path.dirname(src), "--out",
                                 os.path.join(tmp, "out.h5"), "--clip-model", "random:tiny", "--workers", "2",
                                 "--no-progress"], cwd=common.REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        peak_total, peak_main, peak_worker = 0, 0, 0
        while proc.poll() is None:
            rss = _tree_rss(proc.pid)
            if rss:
                peak_total = max(peak_total, sum(rss.values()))
                peak_main = max(peak_main, rss.get(proc.pid, 0))
                peak_worker = max([peak_worker] + [v for k, v in rss.items() if k != proc.pid])
            time.sleep(0.1)
        err = proc.stderr.read().decode("utf-8", "replace")
        if proc.returncode:
            raise RuntimeError(f"extract failed: {err[-500:]}")
    mib = 1 << 20
    return {"peak_total_mib": peak_total / mib, "peak_main_mib": peak_main / mib, "peak_worker_mib": peak_worker / mib}


def main() -> dict:
    run = common.Run("memory", RESULT_KEYS)
    demo = common.demo_videos()
    res: Dict[str, object] = {"runs": {}}
    for n in SIZES:
        files = [demo[i % len(demo)] for i in range(n)]       # the demo set, repeated under new names
        t = time.perf_counter()
        res["runs"][str(n)] = dict(_extract_peak(files), seconds=time.perf_counter() - t)
        print(f"memory: {n} videos: {res['runs'][str(n)]}", flush=True)
    big, small = res["runs"][str(SIZES[1])], res["runs"][str(SIZES[0])]
    res["rss_growth"] = run.headline("rss_growth", [big["peak_total_mib"] / small["peak_total_mib"]])
    res["goals"] = {"rss_growth": 1.2}
    res["method"] = ("python -m extract --workers 2 --clip-model random:tiny over the demo set repeated; "
                     "RSS of the main process and its workers (Dask nanny, workers, ffmpeg) sampled every 0.1 s")
    run.write(res, state="one extraction per size, demo clips in the page cache", repeats=1)
    print(common.table(["videos", "peak total MiB", "main MiB", "worker MiB", "seconds"],
                       [(k, f"{v['peak_total_mib']:.0f}", f"{v['peak_main_mib']:.0f}", f"{v['peak_worker_mib']:.0f}",
                         f"{v['seconds']:.0f}") for k, v in res["runs"].items()]))
    print(f"rss_growth {res['rss_growth']:.3f} (goal at most 1.2: {common.goal(res['rss_growth'], 1.2)})")
    return res


if __name__ == "__main__":
    common.exit_on_help(__doc__)
    main()
