"""`python -m cache compact`: rewrite a cache's live rows into fresh shards, in row order.

Appends never rewrite old rows, so replaced videos leave dead rows behind and many small runs
leave many small shards. Compaction copies the live rows once (it needs that much free disk for
a while), swaps in a manifest pointing at the new shards, and only then deletes the old ones. A
kill at any moment leaves the old cache whole; the next writer removes the unreferenced files.
Readers that opened the cache before keep reading their snapshot (they hold the files open).
"""
import os
from typing import Tuple

from cache import layout as L
from cache.reader import open_cache, read_settings
from cache.shards import copy_rows
from cache.writer import CacheWriter, SHARD_BYTES


def compact(path: str, shard_bytes: int = SHARD_BYTES, progress: bool = True) -> Tuple[int, int]:
    """Compact the cache at `path`; returns (shards before, shards after). Raises CacheError."""
    writer = CacheWriter(path, read_settings(path), shard_bytes, progress)   # the lock, a replayed journal, an upgrade
    try:
        st = writer.state
        before = len(st.shards)
        per_shard = writer._max_rows()
        if st.physical_rows == len(st.ids) and before <= -(-len(st.ids) // per_shard):
            return before, before   # no dead rows and no more shards than needed: nothing to gain
        number = 1 + max((int(s.name) for s in st.shards), default=0)
        with open_cache(path) as r:
            new = copy_rows(r, path, number, per_shard, "compacting", progress)
        old = [s.name for s in st.shards]
        st.shards, st.row_map = new, list(range(len(st.ids)))
        writer._commit_state(st)
        for name in old:
            for f in (L.frames_name(name), L.videos_name(name)):
                if os.path.exists(L.shard_file(path, f)):
                    os.unlink(L.shard_file(path, f))
        return before, len(new)
    finally:
        writer.abandon()
