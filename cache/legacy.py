"""Schema-1 caches (frames inside the HDF5 file): their video index sidecar, built once on request."""
import hashlib
import os
import sys
from typing import TYPE_CHECKING

import numpy as np

from cache import layout as L
from cache.pooling import mean_pool
from clipvid.progress import progress as progress_display

if TYPE_CHECKING:
    from cache.reader import CacheReader

_BLOCK = 1024   # videos per streamed read while building


def index_key(path: str, videos: int) -> str:
    """Changes whenever the file is replaced or rewritten (the old writer always replaced it)."""
    st = os.stat(path)
    raw = f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{videos}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def pooled_blocks(reader: "CacheReader", progress: bool, what: str):
    """Yield (start, [b, D] float16 unit mean-pooled rows) over the whole cache, with the one progress display."""
    with progress_display(total=reader.num_videos, desc=what, unit="video", quiet=not progress) as shown:
        for start, block in reader.iter_emb(_BLOCK):   # [b, N, D]
            yield start, mean_pool(block).astype(np.float16)
            shown.update(len(block))


def legacy_index(reader: "CacheReader", progress: bool = True) -> L.RowView:
    """[V, D] float16 video index of a schema-1 cache: memory-mapped from the sidecar folder, built
    in one streamed pass the first time (in memory only, when the folder cannot be written)."""
    V, D = reader.num_videos, reader.dim
    folder = L.sidecar(reader.path)
    target = os.path.join(folder, f"index-{index_key(reader.path, V)}.vidx")
    if V == 0:
        return L.RowView([], (0, D), np.float16)
    if os.path.exists(target) and os.path.getsize(target) == V * D * 2:
        return L.RowView([(0, np.memmap(target, np.float16, "r", shape=(V, D)))], (V, D), np.float16)
    tmp = f"{target}.tmp-{os.getpid()}"
    try:
        os.makedirs(folder, exist_ok=True)
        with open(tmp, "wb") as f:
            for _, pooled in pooled_blocks(reader, progress, f"{reader.path}: building the video index"):
                f.write(pooled.tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        for name in os.listdir(folder):   # indexes of earlier versions of the file
            if name.startswith("index-") and os.path.join(folder, name) != target:
                os.unlink(os.path.join(folder, name))
    except OSError:
        if os.path.exists(tmp):
            os.unlink(tmp)
        out = np.empty((V, D), np.float16)
        for start, pooled in pooled_blocks(reader, progress, f"{reader.path}: pooling (read-only folder)"):
            out[start:start + len(pooled)] = pooled
        return L.RowView([(0, out)], (V, D), np.float16)
    return L.RowView([(0, np.memmap(target, np.float16, "r", shape=(V, D)))], (V, D), np.float16)


def migrate(reader: "CacheReader", st, append_row) -> object:
    """Copy a schema-1 cache into the first shard of the new layout (one streamed pass, once) and
    return the filled manifest state `st`; the caller commits it over the old file."""
    from cache.shards import row_arrays
    V = reader.num_videos
    st.classes = list(reader.class_names)
    st.text = {n: reader.text_emb[i] for i, n in enumerate(reader.class_names)}
    st.failed = {i: why for i, why in reader.failures}
    print(f"note: {reader.path}: migrating to cache schema 2 (a one-time copy of {V} videos)", file=sys.stderr)
    with progress_display(total=V, desc=f"{reader.path}: migrating", unit="video") as shown:
        for start, block in reader.iter_emb(_BLOCK):   # [b, N, D]
            times = reader.times(np.arange(start, start + len(block)))
            for k in range(len(block)):
                i = start + k
                physical, _ = append_row(row_arrays(block[k], times[k], int(reader.labels[i]),
                                                    int(reader.n_distinct[i]), float(reader.duration[i]),
                                                    float(reader.fps[i]),
                                                    (reader.ids[i], reader.splits[i], reader.captions[i], "", "")))
                st.put_video(str(reader.ids[i]), physical, "")
            shown.update(len(block))
    return st


def import_old_journal(path: str, writer) -> None:
    """Videos a killed schema-1 writer left in `path.journal` (with their frames) join the new
    layout; then that journal and the old lock file are removed."""
    from cache.journal import scan
    old = path + ".journal"
    for _, rec in scan(old):
        m = rec.meta
        if m.get("kind") == "video" and m["id"] not in writer.done_ids:
            label = m.get("label") if m.get("label") in writer.class_names else None
            writer.add_video(m["id"], rec.emb, rec.t, label, m.get("split", ""), m.get("caption", ""),
                             m.get("n_distinct", 0), m.get("duration", 0.0), m.get("fps", 0.0))
        elif m.get("kind") == "failure" and m["id"] not in writer.done_ids:
            writer.add_failure(m["id"], m["reason"])
    writer.commit()
    for leftover in (old, path + ".lock"):
        if os.path.exists(leftover):
            os.unlink(leftover)
