"""Cached frame embeddings held in memory (or read in chunks), with an evenly spaced frame subset."""
from typing import Iterator, Optional, Tuple

import numpy as np

from cache.reader import CacheReader

READ_BLOCK = 512  # videos per HDF5 read; big enough to amortise chunk look-ups, small enough for RAM


def frame_subset(n: int, k: Optional[int]) -> np.ndarray:
    """Indices of k evenly spaced rows of n, each at the centre of its 1/k slice; k >= n (or None) gives all."""
    if n < 1:
        raise ValueError(f"a video needs at least one frame row, got n={n}")
    if k is None or k >= n:
        return np.arange(n, dtype=np.int64)
    if k < 1:
        raise ValueError(f"the number of frames must be at least 1, got {k}")
    # Centres of k equal slices: symmetric under time reversal, so reversed twins see mirrored rows.
    return np.floor((np.arange(k) + 0.5) * n / k).astype(np.int64)


def available_memory() -> int:
    """Bytes of RAM the kernel says are available now (a guess of 4 GiB when it cannot tell)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


class FrameSource:
    """Frame embeddings [V, K, D] float16 of one cache, for a fixed frame subset.

    In memory when they fit in `budget` bytes (slicing is then free); otherwise every request is
    a sorted HDF5 read, so caches larger than RAM still train, only slower.
    """

    def __init__(self, reader: CacheReader, frames: np.ndarray, budget: Optional[int] = None):
        self.reader = reader
        self.frames = np.asarray(frames, dtype=np.int64)
        self.num_videos = reader.num_videos
        self.dim = reader.dim
        need = self.num_videos * len(self.frames) * self.dim * 2
        budget = available_memory() // 2 if budget is None else budget
        self.in_memory = need <= budget
        self._all: Optional[np.ndarray] = self._load_all() if self.in_memory else None

    def _load_all(self) -> np.ndarray:
        out = np.empty((self.num_videos, len(self.frames), self.dim), np.float16)  # [V, K, D]
        for start, block in self.reader.iter_emb(READ_BLOCK):  # block: [b, N, D]
            # Keep only the K rows per video, so memory is V*K*D, never V*N*D.
            out[start:start + len(block)] = block[:, self.frames]
        return out

    def get(self, rows: np.ndarray) -> np.ndarray:
        """Frame embeddings [len(rows), K, D] float16 for the given video rows, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        if self._all is not None:
            return self._all[rows]
        return self.reader.emb(rows)[:, self.frames]

    def blocks(self, rows: Optional[np.ndarray] = None,
               size: int = READ_BLOCK) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """Yield (row indices, [b, K, D] float16) over `rows` (default: every video), in order."""
        rows = np.arange(self.num_videos) if rows is None else np.asarray(rows, dtype=np.int64)
        for start in range(0, len(rows), size):
            part = rows[start:start + size]
            yield part, self.get(part)



def frame_statistics(source: FrameSource, rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-dimension mean and std [D] of the frames of `rows`, and std of frame minus its video's mean.

    Accumulated in float64 block by block, so it works on caches that do not fit in memory.
    """
    count, total, squares, dev_squares = 0, 0.0, 0.0, 0.0
    for _, block in source.blocks(rows):
        x = block.astype(np.float64)                      # [b, K, D]
        dev = x - x.mean(axis=1, keepdims=True)           # [b, K, D]
        count += x.shape[0] * x.shape[1]
        total = total + x.sum(axis=(0, 1))
        squares = squares + (x ** 2).sum(axis=(0, 1))
        dev_squares = dev_squares + (dev ** 2).sum(axis=(0, 1))
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(squares / max(count, 1) - mean ** 2, 0.0))
    dev_std = np.sqrt(dev_squares / max(count, 1))
    # A floor keeps constant dimensions (and single-frame videos, whose deviation is 0) finite.
    floor = 1e-3 * max(float(std.mean()), 1e-6)
    return (mean.astype(np.float32), np.maximum(std, floor).astype(np.float32),
            np.maximum(dev_std, floor).astype(np.float32))
