"""bench.scale: appending 1,000 videos to a 200,000-video cache (100 x 512 float16) against appending
them to an empty cache, in time and in peak extra disk; plus what per-video metadata costs."""
import importlib.util
import json
import os
import shutil
import threading
import time
from typing import Dict, List

import numpy as np

from bench import common

VIDEOS, ADD, FRAMES, DIM, CLASSES = 200_000, 1_000, 100, 512, 400
REPEATS = 3
POOL = 256     # distinct frame blocks, varied per video: generating 20 GB of noise would dominate


def _settings() -> dict:
    from cache.schema import make_settings
    return make_settings("synthetic:scale", "synthetic-scale", True, DIM, FRAMES, {"synthetic": 1},
                         ["a video of {}."], "/videos/kinetics")


class Videos:
    """Kinetics-like synthetic videos: ids, labels, fingerprints and frames, made on demand."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.pool = rng.standard_normal((POOL, FRAMES, DIM), dtype=np.float32).astype(np.float16)  # [P, N, D]
        self.text = rng.standard_normal((CLASSES, DIM), dtype=np.float32)
        self.t = np.linspace(0.05, 9.95, FRAMES, dtype=np.float32)

    def add(self, writer, start: int, count: int, progress: str = "") -> None:
        writer.set_classes([f"class {c}" for c in range(CLASSES)], self.text)
        for i in range(start, start + count):
            emb = self.pool[(i * 7919) % POOL].copy()                                  # [N, D]
            emb[0, :3] = (i % 1000, i // 1000 % 1000, i // 1_000_000)                # each video distinct
            writer.add_video(f"class {i % CLASSES}/yt{i:011d}_000010_000020.mp4", emb, self.t,
                             f"class {i % CLASSES}", "train", "", FRAMES, 10.0, 25.0,
                             f"{1_500_000 + i}:{i * 2654435761 % (1 << 64):032x}")
            if progress and (i + 1 - start) % 10_000 == 0:
                print(f"\r{progress}: {i + 1 - start}/{count} videos", end="", flush=True)
        if progress:
            print(flush=True)


def disk_bytes(path: str) -> int:
    """Bytes allocated to a cache: its manifest, and everything in its sidecar folder."""
    total = 0
    for p in [path] + [e.path for e in os.scandir(path + ".d")] if os.path.isdir(path + ".d") else [path]:
        try:
            total += os.stat(p).st_blocks * 512
        except FileNotFoundError:
            pass   # a temporary file renamed away between listing and stat
    return total


class PeakDisk(threading.Thread):
    """Samples a cache's allocated bytes every few milliseconds; `peak` is the largest seen."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.path, self.peak, self._done = path, disk_bytes(path) if os.path.exists(path) else 0, threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, disk_bytes(self.path))

    def stop(self) -> int:
        self._done.set()
        self.join()
        return max(self.peak, disk_bytes(self.path))


def timed_append(path: str, videos: Videos, start: int) -> Dict[str, float]:
    """What `extract` does around its videos: open the writer, add ADD videos, close (commit)."""
    from cache.writer import CacheWriter
    before = disk_bytes(path) if os.path.exists(path) else 0
    peak = PeakDisk(path)
    peak.start()
    t = time.perf_counter()
    w = CacheWriter(path, _settings())
    opened = time.perf_counter() - t
    videos.add(w, start, ADD)
    w.close()
    seconds = time.perf_counter() - t
    top = peak.stop()
    after = disk_bytes(path)
    return {"seconds": seconds, "open_seconds": opened, "added_bytes": after - before, "peak_extra": top - before}


def metadata_costs(path: str) -> Dict[str, float]:
    """What a reader and a commit pay per video at this size (ids and the rest are O(V))."""
    from cache import manifest as M
    from cache.reader import open_cache
    t = time.perf_counter()
    with open_cache(path) as r:
        open_s = time.perf_counter() - t
        st = M.from_reader(r)
        t = time.perf_counter()
        index = r.video_index()
        index_s = time.perf_counter() - t
        parts = len(index.parts)
        v = r.num_videos
    tmp = path + ".bench-manifest"
    t = time.perf_counter()
    M.write(tmp, st)
    write_s = time.perf_counter() - t
    size = os.path.getsize(tmp)
    os.unlink(tmp)
    return {"videos": v, "reader_open_s": open_s, "video_index_open_s": index_s, "video_index_parts": parts,
            "manifest_bytes": size, "manifest_write_s": write_s}


def fingerprint_ms() -> Dict[str, float]:
    """Cost of one content fingerprint (page cache warm: the bytes read are what a cold disk pays)."""
    from extract.identity import EDGE, fingerprint
    files = common.real_videos()
    big = os.path.join(common.cache_dir("scale"), "big_file.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(64 << 20))
    try:
        out = {"bytes_read_per_file": 2 * EDGE}
        for name, paths in (("fixture_clips", files), ("file_64mb", [big])):
            if not paths:
                continue
            for p in paths:
                fingerprint(p)
            t = time.perf_counter()
            for _ in range(20):
                for p in paths:
                    fingerprint(p)
            out[f"{name}_ms"] = 1000 * (time.perf_counter() - t) / (20 * len(paths))
        return out
    finally:
        os.unlink(big)


def search_figures() -> Dict[str, object]:
    """The search side's figures (bench/scale_search.py), when that module exists."""
    if importlib.util.find_spec("bench.scale_search") is None:
        return {}
    from bench import scale_search
    return scale_search.search_figures()


def _remove(path: str) -> None:
    for p in (path, path + ".d"):
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.unlink(p)


def main() -> dict:
    folder = common.cache_dir("scale")
    big, small = os.path.join(folder, "big.h5"), os.path.join(folder, "small.h5")
    videos = Videos()
    res: Dict[str, object] = {"videos": VIDEOS, "added": ADD, "frames": FRAMES, "dim": DIM, "repeats": REPEATS}
    try:
        _remove(big)
        from cache.writer import CacheWriter
        t = time.perf_counter()
        w = CacheWriter(big, _settings())
        videos.add(w, 0, VIDEOS, progress="scale: building the 200,000-video cache")
        w.close()
        res["build_s"] = time.perf_counter() - t
        res["cache_bytes"] = disk_bytes(big)
        empty: List[dict] = []
        grown: List[dict] = []
        for rep in range(REPEATS):   # interleaved, so load from elsewhere hits both alike
            _remove(small)
            empty.append(timed_append(small, videos, VIDEOS + rep * ADD))
            grown.append(timed_append(big, videos, VIDEOS + rep * ADD))
            print(f"scale: append {ADD}: empty cache {empty[-1]['seconds']:.2f} s, "
                  f"{VIDEOS + rep * ADD}-video cache {grown[-1]['seconds']:.2f} s", flush=True)
        med = lambda runs, key: float(np.median([r[key] for r in runs]))
        res["append_s_empty"], res["append_s_200k"] = med(empty, "seconds"), med(grown, "seconds")
        res["open_s_empty"], res["open_s_200k"] = med(empty, "open_seconds"), med(grown, "open_seconds")
        res["append_ratio"] = res["append_s_200k"] / res["append_s_empty"]
        res["append_disk_ratio"] = max(r["peak_extra"] / r["added_bytes"] for r in grown)
        res["append_disk_ratio_empty"] = max(r["peak_extra"] / r["added_bytes"] for r in empty)
        res["added_bytes"] = grown[0]["added_bytes"]
        res["metadata"] = metadata_costs(big)
    finally:
        _remove(big)
        _remove(small)
    res["fingerprint"] = fingerprint_ms()
    try:
        res.update(search_figures())
    except Exception as exc:   # the append figures stand on their own
        res["search_error"] = f"{type(exc).__name__}: {exc}"
    path = os.path.join(common.RESULTS, "scale.json")
    merged = json.load(open(path)) if os.path.exists(path) else {}
    merged.update(res)
    merged.pop("machine", None)
    print(common.table(["figure", "value", "goal"], [
        ["append_ratio", res["append_ratio"], f"<= 1.5 ({common.goal(res['append_ratio'], 1.5)})"],
        ["append_disk_ratio", res["append_disk_ratio"], f"<= 1.5 ({common.goal(res['append_disk_ratio'], 1.5)})"],
        ["append 1,000 to empty (s)", res["append_s_empty"], ""],
        ["append 1,000 to 200k (s)", res["append_s_200k"], ""]]))
    print(f"wrote {common.write_result('scale', merged)}")
    return res


if __name__ == "__main__":
    main()
