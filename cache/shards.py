"""The writer's side of shard files: append rows, keep running checksums, make them durable."""
import os
import zlib
from typing import List, Sequence, Tuple

import numpy as np

from cache import layout as L
from cache.pooling import mean_pool


def video_row(emb: np.ndarray) -> np.ndarray:
    """The stored video-index row of one video's frames [N, D]: unit mean-pool as float16 [D]."""
    return mean_pool(np.asarray(emb)[None])[0].astype(np.float16)


def row_arrays(emb: np.ndarray, t: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(emb [N, D] float16, t [N] float32, vidx [D] float16) as the bytes a shard stores."""
    emb = np.ascontiguousarray(emb, np.float16)
    return emb, np.ascontiguousarray(t, np.float32), video_row(emb)


class ShardAppender:
    """Appends whole rows to one shard's three files; only rows past `rows` are ever written."""

    def __init__(self, cache_path: str, name: str, rows: int, crc: Sequence[int], frames: int, dim: int):
        self.name, self.rows = name, int(rows)
        self.crc: List[int] = [int(c) for c in crc]
        self.files = [L.shard_file(cache_path, name, k) for k in L.KINDS]
        self.nbytes = [L.row_bytes(k, frames, dim) for k in L.KINDS]
        self._fds: List[int] = []
        for f, nb in zip(self.files, self.nbytes):
            fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
            self._fds.append(fd)
            os.ftruncate(fd, self.rows * nb)   # drop a killed writer's uncommitted tail
            os.lseek(fd, 0, os.SEEK_END)

    @property
    def emb_bytes(self) -> int:
        return self.rows * self.nbytes[0]

    def append(self, arrays: Sequence[np.ndarray]) -> List[int]:
        """Write one row of each kind (emb, t, vidx); returns the running crc32 of each file."""
        for i, (fd, arr) in enumerate(zip(self._fds, arrays)):
            data = memoryview(np.ascontiguousarray(arr)).cast("B")
            if len(data) != self.nbytes[i]:
                raise ValueError(f"a {L.KINDS[i]} row has {len(data)} bytes, the cache stores {self.nbytes[i]}")
            self.crc[i] = zlib.crc32(data, self.crc[i])
            while data:   # a regular-file write may be short; finish it
                n = os.write(fd, data)
                data = data[n:]
        self.rows += 1
        return list(self.crc)

    def sync(self) -> None:
        for fd in self._fds:
            os.fsync(fd)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []


def running_crc(cache_path: str, name: str, start: int, count: int, crc: Sequence[int], frames: int,
                dim: int, block: int = 256):
    """Yield the running crc32 triple after each of rows start..start+count-1 of a shard, reading
    the files sequentially; stops early when a file is too short."""
    crc = [int(c) for c in crc]
    sizes = [L.row_bytes(k, frames, dim) for k in L.KINDS]
    handles = [open(L.shard_file(cache_path, name, k), "rb") for k in L.KINDS]
    try:
        for h, nb in zip(handles, sizes):
            h.seek(start * nb)
        done = 0
        while done < count:
            take = min(block, count - done)
            chunks = [h.read(take * nb) for h, nb in zip(handles, sizes)]
            for j in range(take):
                for i, nb in enumerate(sizes):
                    piece = chunks[i][j * nb:(j + 1) * nb]
                    if len(piece) < nb:
                        return
                    crc[i] = zlib.crc32(piece, crc[i])
                yield list(crc)
            done += take
    finally:
        for h in handles:
            h.close()


def file_crc(path: str, nbytes: int, chunk: int = 64 << 20) -> int:
    """crc32 of the first nbytes of a file, read in large chunks."""
    crc = 0
    with open(path, "rb") as f:
        left = nbytes
        while left:
            data = f.read(min(chunk, left))
            if not data:
                raise OSError(f"{path}: file ends early")
            crc = zlib.crc32(data, crc)
            left -= len(data)
    return crc
