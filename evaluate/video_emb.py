"""Video embeddings for every cached video: plain mean-pooled CLIP, or a trained head's."""
from typing import TYPE_CHECKING, Iterable, Optional, Tuple

import numpy as np
from clipvid.progress import progress as progress_display

from cache.reader import CacheReader
from evaluate import metrics as M
from train.method import as_float32

if TYPE_CHECKING:
    from train.api import Method
    from train.data import SpillRows


EMBED_BLOCK = 256  # videos per read and per pooling step


def _blocks(reader: CacheReader, desc: str, progress: bool) -> Iterable[Tuple[int, np.ndarray]]:
    total = (reader.num_videos + EMBED_BLOCK - 1) // EMBED_BLOCK
    return progress_display(reader.iter_emb(EMBED_BLOCK), total=total, desc=desc, unit="block", quiet=not progress)


def mean_pooled(reader: CacheReader, progress: bool = False, rows: Optional[np.ndarray] = None) -> "SpillRows":
    """[V, D] unit mean of unit frame embeddings in a temporary file (index it like an array: rows,
    slices), read block by block (caches may exceed memory).

    With `rows`, only those videos are read and pooled (the others stay zero): a report needs the
    test split and the t-SNE sample, not every video of a large cache.
    """
    from train.data import SpillRows, read_rows
    out = SpillRows((reader.num_videos, reader.dim), np.float32, "meanpool", beside=reader.path)   # sparse: unread rows cost nothing
    if rows is None:
        for start, block in _blocks(reader, "mean-pooling", progress):
            out.write(start, M.mean_pool(as_float32(block)))
        return out
    rows = np.unique(np.asarray(rows, np.int64))
    steps = range(0, len(rows), 4 * EMBED_BLOCK)
    for s in progress_display(steps, desc="mean-pooling", unit="block", quiet=not progress):
        part = rows[s:s + 4 * EMBED_BLOCK]
        out.write_rows(part, M.mean_pool(as_float32(read_rows(reader, part))))  # contiguous runs of the cache
    return out


def head_embeddings(method: "Method", reader: CacheReader, progress: bool = False) -> np.ndarray:
    """[V, D] unit joint-space embeddings from a train.api Method, block by block."""
    out = np.zeros((reader.num_videos, reader.dim), np.float32)
    for start, block in _blocks(reader, f"embedding with {method.name}", progress):
        out[start:start + len(block)] = M.l2_normalise(method.video_embeddings(as_float32(block)))
    return out


def release(emb: np.ndarray) -> None:
    """Drop a memory-mapped array's pages from this process (they stay in the page cache): after a
    head's retrieval its [V, D] embeddings no longer count towards the report's memory."""
    import mmap
    base = emb
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "_mmap", None) or getattr(base, "base", None)
    if isinstance(base, mmap.mmap):
        base.madvise(mmap.MADV_DONTNEED)
