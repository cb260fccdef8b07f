"""The writer's side of shard files: append rows, keep running checksums, make them durable."""
import os
import zlib
from typing import List, Sequence

import numpy as np

from cache import layout as L
from cache.pooling import mean_pool


def video_row(emb: np.ndarray) -> np.ndarray:
    """The stored video-index row of one video's frames [N, D]: unit mean-pool as float16 [D]."""
    return mean_pool(np.asarray(emb)[None])[0].astype(np.float16)


def row_arrays(emb: np.ndarray, t: np.ndarray, label: int, n_distinct: int, duration: float, fps: float,
               strings: Sequence[str]) -> List:
    """One video as the rows its shard stores: emb [N, D] f16, t [N] f32, vidx [D] f16, num, str bytes."""
    emb = np.ascontiguousarray(emb, np.float16)
    num = np.array((label, n_distinct, duration, fps), L.NUM)
    return [emb, np.ascontiguousarray(t, np.float32), video_row(emb), num, L.encode_strings(*strings)]


class ShardAppender:
    """Appends whole rows to one shard's files; nothing before the committed end is ever written."""

    def __init__(self, cache_path: str, name: str, rows: int, str_bytes: int, crc: Sequence[int],
                 frames: int, dim: int):
        self.name, self.rows, self.str_bytes = name, int(rows), int(str_bytes)
        self.crc: List[int] = [int(c) for c in crc]
        self.files = [L.shard_file(cache_path, name, k) for k in L.FILES]
        self.nbytes = [L.row_bytes(k, frames, dim) for k in L.KINDS]
        self._fds: List[int] = []
        for f, end in zip(self.files, [self.rows * nb for nb in self.nbytes] + [self.str_bytes]):
            fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
            self._fds.append(fd)
            os.ftruncate(fd, end)   # drop a killed writer's uncommitted tail
            os.lseek(fd, 0, os.SEEK_END)

    @property
    def emb_bytes(self) -> int:
        return self.rows * self.nbytes[0]

    def append(self, rows: Sequence) -> List[int]:
        """Write one video's rows (as row_arrays gives them); returns the running crc32 of each file."""
        for i, (fd, arr) in enumerate(zip(self._fds, rows)):
            data = memoryview(arr if isinstance(arr, bytes) else np.ascontiguousarray(arr)).cast("B")
            if i < len(self.nbytes) and len(data) != self.nbytes[i]:
                raise ValueError(f"a {L.FILES[i]} row has {len(data)} bytes, the cache stores {self.nbytes[i]}")
            self.crc[i] = zlib.crc32(data, self.crc[i])
            while data:   # a regular-file write may be short; finish it
                n = os.write(fd, data)
                data = data[n:]
        self.rows += 1
        self.str_bytes += len(rows[-1])
        return list(self.crc)

    def append_block(self, rows: Sequence) -> List[int]:
        """Write many videos' rows at once: arrays with a leading [b] axis for emb, t, vidx, num, then
        the .str bytes of all b videos; one write per file."""
        count = len(rows[0])
        for i, arr in enumerate(rows[:len(self.nbytes)]):
            if arr.nbytes != count * self.nbytes[i]:
                raise ValueError(f"a block of {L.FILES[i]} rows has {arr.nbytes} bytes for {count} rows")
        for i, (fd, arr) in enumerate(zip(self._fds, rows)):
            data = memoryview(arr if isinstance(arr, bytes) else np.ascontiguousarray(arr)).cast("B")
            self.crc[i] = zlib.crc32(data, self.crc[i])
            while data:
                n = os.write(fd, data)
                data = data[n:]
        self.rows += count
        self.str_bytes += len(rows[-1])
        return list(self.crc)

    def sync(self) -> None:
        for fd in self._fds:
            os.fsync(fd)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []


class ShardSeries:
    """Writes blocks of rows into fresh shards numbered from `first`, each holding up to `per_shard`
    rows (compaction, and bulk builds of synthetic caches); `finish` makes them durable."""

    def __init__(self, cache_path: str, first: int, per_shard: int, frames: int, dim: int):
        self.path, self.number, self.per_shard, self.frames, self.dim = cache_path, first, per_shard, frames, dim
        self.shards: list = []
        self._open: ShardAppender = None

    def write(self, emb: np.ndarray, t: np.ndarray, vidx: np.ndarray, num: np.ndarray, strings: List[bytes]) -> None:
        """emb [b, N, D] f16, t [b, N] f32, vidx [b, D] f16, num [b] layout.NUM, one .str row per video."""
        i = 0
        while i < len(emb):   # whole blocks, split only where a shard fills up
            if self._open is None or self._open.rows >= self.per_shard:
                self._next()
            j = min(len(emb), i + self.per_shard - self._open.rows)
            self._open.append_block((emb[i:j], t[i:j], vidx[i:j], num[i:j], b"".join(strings[i:j])))
            i = j

    def _next(self) -> None:
        from cache.manifest import Shard
        self._close()
        self.shards.append(Shard(L.shard_name(self.number), 0))
        self.number += 1
        self._open = ShardAppender(self.path, self.shards[-1].name, 0, 0, [0] * len(L.FILES), self.frames, self.dim)

    def _close(self) -> None:
        if self._open is not None:
            self._open.sync()
            last = self.shards[-1]
            last.rows, last.str_bytes, last.crc = self._open.rows, self._open.str_bytes, list(self._open.crc)
            self._open.close()
            self._open = None

    def finish(self) -> list:
        """The written shards (manifest.Shard), synced to disk."""
        self._close()
        return self.shards


def running_crc(cache_path: str, name: str, start: int, str_start: int, str_ends: Sequence[int],
                crc: Sequence[int], frames: int, dim: int, block: int = 256):
    """Yield the running crc32 of every file after each row from `start` on (the .str rows end at
    `str_ends`), reading sequentially; stops early at a file that is too short."""
    crc = [int(c) for c in crc]
    sizes = [L.row_bytes(k, frames, dim) for k in L.KINDS]
    handles = [open(L.shard_file(cache_path, name, k), "rb") for k in L.FILES]
    try:
        for h, at in zip(handles, [start * nb for nb in sizes] + [str_start]):
            h.seek(at)
        prev = str_start
        for first in range(0, len(str_ends), block):
            ends = str_ends[first:first + block]
            chunks = [h.read(len(ends) * nb) for h, nb in zip(handles, sizes)]
            text = handles[-1].read(max(0, ends[-1] - prev))
            base = prev
            for j, end in enumerate(ends):
                pieces = [c[j * nb:(j + 1) * nb] for c, nb in zip(chunks, sizes)] + [text[prev - base:end - base]]
                if any(len(p) < nb for p, nb in zip(pieces, sizes)) or end < prev or len(pieces[-1]) < end - prev:
                    return
                crc = [zlib.crc32(p, c) for p, c in zip(pieces, crc)]
                prev = end
                yield list(crc)
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
