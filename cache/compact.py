"""`python -m cache compact`: rewrite a cache's live rows into fresh shards, in row order.

Appends never rewrite old rows, so replaced videos leave dead rows behind and many small runs
leave many small shards. Compaction copies the live rows once (it needs that much free disk for
a while), swaps in a manifest pointing at the new shards, and only then deletes the old ones. A
kill at any moment leaves the old cache whole; the next writer removes the unreferenced files.
Readers that opened the cache before keep reading their snapshot (they hold the files open).
"""
import os
from typing import Tuple

import numpy as np

from cache import layout as L
from cache.reader import open_cache, read_settings
from cache.shards import ShardSeries
from cache.writer import CacheWriter, SHARD_BYTES
from clipvid.progress import progress as progress_display

_BLOCK = 256   # videos per read


def compact(path: str, shard_bytes: int = SHARD_BYTES, progress: bool = True) -> Tuple[int, int]:
    """Compact the cache at `path`; returns (shards before, shards after). Raises CacheError."""
    writer = CacheWriter(path, read_settings(path), shard_bytes)   # the lock, and a replayed journal
    try:
        st = writer.state
        before = len(st.shards)
        N, D = int(st.settings["frames"]), int(st.settings["dim"])
        per_shard = max(1, shard_bytes // L.row_bytes("emb", N, D))
        if st.physical_rows == len(st.ids) and before <= -(-len(st.ids) // per_shard):
            return before, before   # no dead rows and no more shards than needed: nothing to gain
        number = 1 + max((int(s.name) for s in st.shards), default=0)
        series = ShardSeries(path, number, per_shard, N, D)
        with open_cache(path) as r, progress_display(total=r.num_videos, desc=f"{path}: compacting",
                                                     unit="video", quiet=not progress) as shown:
            V = r.num_videos
            index = r.video_index(progress=False)
            for start in range(0, V, _BLOCK):
                rows = np.arange(start, min(start + _BLOCK, V))
                num = np.empty(len(rows), L.NUM)
                num["label"], num["n_distinct"] = r.labels[rows], r.n_distinct[rows]
                num["duration"], num["fps"] = r.duration[rows], r.fps[rows]
                text = [L.encode_strings(r.ids[k], r.splits[k], r.captions[k], r.content[k], r.decoder[k]) for k in rows]
                series.write(r.emb(rows), r.times(rows), index[rows], num, text)
                shown.update(len(rows))
        new = series.finish()
        old = [s.name for s in st.shards]
        st.shards, st.row_map = new, list(range(V))
        writer._commit_state(st)
        for name in old:
            for kind in L.FILES:
                f = L.shard_file(path, name, kind)
                if os.path.exists(f):
                    os.unlink(f)
        return before, len(new)
    finally:
        writer.abandon()

