"""A cache for your own code: numpy arrays in memory, or a torch Dataset of [K, D] frames read on demand."""
import os
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
import torch

from cache.reader import CacheReader, open_cache
from train.data import FrameSource, frame_subset


@dataclass
class CacheArrays:
    """One cache in memory (for caches that fit in RAM; FrameDataset reads larger ones video by video)."""
    emb: np.ndarray            # [V, K, D] float16 frame embeddings (K evenly spaced rows of N)
    times: np.ndarray          # [V, K] float32 seconds of each row
    labels: np.ndarray         # [V] int32 class index, -1 unlabelled
    ids: List[str]             # [V] video ids
    duration: np.ndarray       # [V] float32 seconds
    class_names: List[str]     # [C]
    text_emb: np.ndarray       # [C, D] float32 prompt-ensembled class text embeddings


def load_arrays(path: str, frames: Optional[int] = None) -> CacheArrays:
    """Read a cache (every video, `frames` evenly spaced rows each, all by default); raises CacheError."""
    with open_cache(path) as reader:
        rows = frame_subset(reader.frames, frames)
        source = FrameSource(reader, rows, budget=1 << 62)           # read block by block into one array
        return CacheArrays(source.get(np.arange(reader.num_videos)), reader.times()[:, rows],
                           reader.labels.copy(), [str(i) for i in reader.ids],
                           np.asarray(reader.duration, np.float32), list(reader.class_names),
                           np.asarray(reader.text_emb, np.float32))


class FrameDataset(torch.utils.data.Dataset):
    """Item i = (frames [K, D] float32 tensor, class index, -1 when unlabelled), read from disk on demand.

    Safe with DataLoader workers: each process opens the file itself (HDF5 handles do not survive a fork).
    """

    def __init__(self, path: str, frames: Optional[int] = None):
        self.path = path
        with open_cache(path) as reader:
            self.rows = frame_subset(reader.frames, frames)            # [K]
            self.labels = reader.labels.copy()                         # [V]
            self.ids = [str(i) for i in reader.ids]
            self.class_names = list(reader.class_names)
            self.text_emb = np.asarray(reader.text_emb, np.float32)    # [C, D]
        self._reader: Optional[CacheReader] = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.labels)

    def _open(self) -> CacheReader:
        if self._reader is None or self._pid != os.getpid():
            self._reader, self._pid = open_cache(self.path), os.getpid()
        return self._reader

    def __getitem__(self, i: int) -> Tuple[torch.Tensor, int]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"video {i} of {len(self)}")
        i = i % len(self)
        x = self._open().emb([i])[0, self.rows]                        # [K, D] float16
        return torch.from_numpy(x.astype(np.float32)), int(self.labels[i])
