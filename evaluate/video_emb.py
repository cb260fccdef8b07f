"""Video embeddings for every cached video: plain mean-pooled CLIP, or a trained head's."""
from typing import TYPE_CHECKING, Iterable, Tuple

import numpy as np
from cache.progress import progress as progress_display

from cache.reader import CacheReader
from evaluate import metrics as M
from train.method import as_float32

if TYPE_CHECKING:
    from train.api import Method


def _blocks(reader: CacheReader, desc: str, progress: bool) -> Iterable[Tuple[int, np.ndarray]]:
    total = (reader.num_videos + 255) // 256
    return progress_display(reader.iter_emb(256), total=total, desc=desc, unit="block", quiet=not progress)


def mean_pooled(reader: CacheReader, progress: bool = False) -> np.ndarray:
    """[V, D] unit mean of unit frame embeddings, read block by block (caches may exceed memory)."""
    from train.data import temp_array
    shape = (reader.num_videos, reader.dim)
    if not reader.num_videos:
        return np.zeros(shape, np.float32)
    out = temp_array(shape, np.float32, "meanpool")
    for start, block in _blocks(reader, "mean-pooling", progress):
        out[start:start + len(block)] = M.mean_pool(as_float32(block))
    out.flush()
    release(out)
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
