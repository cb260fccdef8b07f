"""bench.scale: appending 1,000 videos to a 200,000-video cache (100 x 512 float16) against appending
them to an empty cache, in time and in peak extra disk; plus what per-video metadata costs
(search at 1M videos: bench.scale_search)."""
import os
import shutil
import threading
import time
from typing import Dict, List

import numpy as np

from bench import common

VIDEOS, ADD, FRAMES, DIM, CLASSES = 200_000, 1_000, 100, 512, 400
REPEATS = 5
POOL = 256     # distinct frame blocks, varied per video: generating 20 GB of noise would dominate
RESULT_KEYS = frozenset({"videos", "added", "frames", "dim", "repeats", "build_s", "cache_bytes", "append_s_empty",
                         "append_s_200k", "append_cpu_s_empty", "append_cpu_s_200k", "open_s_empty", "open_s_200k",
                         "append_ratio", "append_ratio_cpu", "runs", "append_disk_ratio", "append_disk_ratio_empty",
                         "added_bytes", "metadata", "mapping_650k", "fingerprint", "method"})
HEADLINES = ("append_ratio", "append_disk_ratio", "fingerprint_fixture_clips_ms")


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

    @staticmethod
    def vid(i: int) -> str:
        return f"class {i % CLASSES}/yt{i:011d}_000010_000020.mp4"

    @staticmethod
    def content(i: int) -> str:
        return f"{1_500_000 + i}:{i * 2654435761 % (1 << 64):032x}"

    def frames(self, rows: np.ndarray) -> np.ndarray:
        """[b, N, D] float16, each video distinct."""
        emb = self.pool[(rows * 7919) % POOL]
        emb[:, 0, :3] = np.stack([rows % 1000, rows // 1000 % 1000, rows // 1_000_000], 1)
        return emb

    def add(self, writer, start: int, count: int) -> None:
        """What extract does with each finished video, through the real writer."""
        writer.set_classes([f"class {c}" for c in range(CLASSES)], self.text)
        for i in range(start, start + count):
            writer.add_video(self.vid(i), self.frames(np.array([i]))[0], self.t, f"class {i % CLASSES}", "train",
                             "", FRAMES, 10.0, 25.0, self.content(i))


def build(path: str, videos: Videos, count: int, block: int = 500) -> None:
    """Stream `count` videos into a new cache, `block` at a time, in the layout the writer makes
    (one add_video call per video would make the build most of the run; appends are timed below)."""
    from cache.bulk import write_cache

    def blocks():
        for start in range(0, count, block):
            rows = np.arange(start, min(start + block, count))
            if (start + block) % 10_000 == 0:
                print(f"\rscale: building the {count:,}-video cache: {start + block}/{count}", end="", flush=True)
            yield videos.frames(rows), videos.t, {
                "id": [videos.vid(i) for i in rows.tolist()], "content": [videos.content(i) for i in rows.tolist()],
                "label": rows % CLASSES, "split": ["train"] * len(rows), "n_distinct": [FRAMES] * len(rows),
                "duration": [10.0] * len(rows), "fps": [25.0] * len(rows)}
    write_cache(path, _settings(), [f"class {c}" for c in range(CLASSES)], videos.text, blocks())
    print(flush=True)


def disk_bytes(path: str, sizes: Dict[str, int] = None, frozen: frozenset = frozenset()) -> int:
    """Bytes allocated to a cache: its manifest and everything in its sidecar folder. Files named
    in `frozen` keep their size from `sizes` (stat-ing every shard each few ms would slow the run)."""
    sizes = {} if sizes is None else sizes
    names = [path] + ([e.path for e in os.scandir(path + ".d")] if os.path.isdir(path + ".d") else [])
    for p in names:
        if p in frozen and p in sizes:
            continue
        try:
            sizes[p] = os.stat(p).st_blocks * 512
        except FileNotFoundError:
            sizes.pop(p, None)   # a temporary file renamed away between listing and stat
    return sum(sizes[p] for p in names if p in sizes)


class PeakDisk(threading.Thread):
    """Samples a cache's allocated bytes every 20 ms; `peak` is the largest seen. Shard files other
    than the newest are only checked at the start and the end (the full scans)."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.path, self._done, self.sizes = path, threading.Event(), {}
        self.peak = disk_bytes(path, self.sizes)
        shards = sorted(p for p in self.sizes if p.endswith(".frames.h5"))
        self.frozen = frozenset(p for p in self.sizes if p.endswith((".frames.h5", ".videos.h5"))
                                and shards and not p.startswith(shards[-1][:-len(".frames.h5")]))

    def run(self) -> None:
        while not self._done.wait(0.02):
            self.peak = max(self.peak, disk_bytes(self.path, self.sizes, self.frozen))

    def stop(self) -> int:
        self._done.set()
        self.join()
        return max(self.peak, disk_bytes(self.path))


def timed_append(path: str, videos: Videos, start: int) -> Dict[str, float]:
    """What `extract` does around its videos: open the writer, add ADD videos, close (commit)."""
    from cache.writer import CacheWriter
    before = disk_bytes(path)
    peak = PeakDisk(path)
    peak.start()
    c, t = common.cpu_seconds(), time.perf_counter()
    w = CacheWriter(path, _settings())
    opened = time.perf_counter() - t
    videos.add(w, start, ADD)
    w.close()
    seconds, cpu = time.perf_counter() - t, common.cpu_seconds() - c
    top = peak.stop()
    after = disk_bytes(path)
    return {"seconds": seconds, "cpu_seconds": cpu, "open_seconds": opened, "added_bytes": after - before,
            "peak_extra": top - before}


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
    M.write(tmp, st, path)
    write_s = time.perf_counter() - t
    size = os.path.getsize(tmp)
    os.unlink(tmp)
    return {"videos": v, "reader_open_s": open_s, "video_index_open_s": index_s, "video_index_parts": parts,
            "manifest_bytes": size, "manifest_write_s": write_s}


def mapping_costs(videos: int = 650_000) -> Dict[str, Dict[str, float]]:
    """Bytes and seconds of one manifest rewrite at Kinetics-700 size, by number of shards (one
    mapping each): what a commit pays for the virtual datasets, independent of V."""
    from cache import manifest as M
    from cache.layout import shard_name
    out = {}
    tmp = os.path.join(common.cache_dir("scale"), "mapping.h5")
    for shards in (20, 64, 200, 1000):
        per = videos // shards
        st = M.State(_settings(), classes=[f"class {c}" for c in range(CLASSES)])
        st.text = {n: np.zeros(DIM, np.float16) for n in st.classes}
        st.shards = [M.Shard(shard_name(i + 1), per, per) for i in range(shards)]
        st.row_map = list(range(per * shards))
        t = time.perf_counter()
        M.write(tmp, st, os.path.join(common.cache_dir("scale"), "c.h5"))
        out[str(shards)] = {"manifest_write_s": time.perf_counter() - t, "manifest_bytes": os.path.getsize(tmp)}
        os.unlink(tmp)
    return out


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


def _remove(path: str) -> None:
    for p in (path, path + ".d"):
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.unlink(p)


def main() -> dict:
    run = common.Run("scale", RESULT_KEYS)
    folder = common.cache_dir("scale")
    big, small = os.path.join(folder, "big.h5"), os.path.join(folder, "small.h5")
    videos = Videos()
    res: Dict[str, object] = {"videos": VIDEOS, "added": ADD, "frames": FRAMES, "dim": DIM, "repeats": REPEATS}
    try:
        _remove(big)
        t = time.perf_counter()
        build(big, videos, VIDEOS)
        res["build_s"] = time.perf_counter() - t
        res["cache_bytes"] = disk_bytes(big)
        empty: List[dict] = []
        grown: List[dict] = []
        for rep in range(REPEATS):   # interleaved, so load from elsewhere hits both alike
            _remove(small)
            empty.append(timed_append(small, videos, VIDEOS + rep * ADD))
            grown.append(timed_append(big, videos, VIDEOS + rep * ADD))
            print(f"scale: append {ADD}: empty cache {empty[-1]['seconds']:.2f} s, "
                  f"{VIDEOS + rep * ADD}-video cache {grown[-1]['seconds']:.2f} s "
                  f"(opening it {grown[-1]['open_seconds']:.2f} s)", flush=True)
        # Best of the interleaved runs, as every bench here (the machine is shared and loaded).
        best = lambda runs, key: float(min(r[key] for r in runs))
        res["append_s_empty"], res["append_s_200k"] = best(empty, "seconds"), best(grown, "seconds")
        res["append_cpu_s_empty"], res["append_cpu_s_200k"] = best(empty, "cpu_seconds"), best(grown, "cpu_seconds")
        res["open_s_empty"], res["open_s_200k"] = best(empty, "open_seconds"), best(grown, "open_seconds")
        res["append_ratio"] = res["append_s_200k"] / res["append_s_empty"]
        run.headline("append_ratio", [g["seconds"] / e["seconds"] for e, g in zip(empty, grown)])
        run.headline("append_disk_ratio", [r["peak_extra"] / r["added_bytes"] for r in grown])
        res["append_ratio_cpu"] = res["append_cpu_s_200k"] / res["append_cpu_s_empty"]
        res["runs"] = {"empty": empty, "grown": grown}
        res["append_disk_ratio"] = max(r["peak_extra"] / r["added_bytes"] for r in grown)
        res["append_disk_ratio_empty"] = max(r["peak_extra"] / r["added_bytes"] for r in empty)
        res["added_bytes"] = grown[0]["added_bytes"]
        res["metadata"] = metadata_costs(big)
        res["mapping_650k"] = mapping_costs()
    finally:
        _remove(big)
        _remove(small)
    res["fingerprint"] = fingerprint_ms()
    if "fixture_clips_ms" in res["fingerprint"]:
        run.headline("fingerprint_fixture_clips_ms", [res["fingerprint"]["fixture_clips_ms"]])
    res["method"] = ("append: %d interleaved pairs (empty cache, then the grown one), each figure the best pair's "
                     "(`headlines`: the spread over the pairs); fingerprint: 20 passes after one untimed pass; "
                     "the search figures at 1M videos are bench.scale_search's" % REPEATS)
    print(common.table(["figure", "value", "goal"], [
        ["append_ratio", res["append_ratio"], f"<= 1.5 ({common.goal(res['append_ratio'], 1.5)})"],
        ["append_disk_ratio", res["append_disk_ratio"], f"<= 1.5 ({common.goal(res['append_disk_ratio'], 1.5)})"],
        ["append 1,000 to empty (s)", res["append_s_empty"], ""],
        ["append 1,000 to 200k (s)", res["append_s_200k"], ""]]))
    print(f"wrote {run.write(res, state='cache built in this run (page cache warm); fingerprints warm', repeats=REPEATS)}")
    return res


if __name__ == "__main__":
    common.exit_on_help(__doc__)
    main()
