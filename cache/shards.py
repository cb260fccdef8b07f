"""The writer's side of shard files: write frame rows at their raw offsets, keep running checksums,
make them durable; and whole-cache copies into fresh shards (compaction, migration, bulk builds)."""
import os
import zlib
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np

from cache import layout as L
from cache import manifest as M
from cache import schema as S
from cache.pooling import mean_pool


def video_row(emb: np.ndarray) -> np.ndarray:
    """Stored video-index rows of frames [b, N, D] (or [N, D]): unit mean-pool as float16 [b, D] ([D])."""
    emb = np.asarray(emb)
    return mean_pool(emb.reshape((-1,) + emb.shape[-2:])).astype(np.float16).reshape(emb.shape[:-2] + emb.shape[-1:])


def row_arrays(emb: np.ndarray, t: np.ndarray) -> List[np.ndarray]:
    """One video's frame rows: emb [N, D] f16, t [N] f32, vidx [D] f16 (layout.KINDS order)."""
    emb = np.ascontiguousarray(emb, np.float16)
    return [emb, np.ascontiguousarray(t, np.float32), video_row(emb)]


class ShardAppender:
    """Writes whole rows into one shard's frame file, after its committed rows; never before them."""

    def __init__(self, cache_path: str, shard: M.Shard, frames: int, dim: int):
        self.shard = shard
        self.file = L.shard_file(cache_path, L.frames_name(shard.name))
        if not os.path.exists(self.file):
            L.create_frames(self.file, shard.capacity, frames, dim)
        shard.capacity, offsets = L.frame_offsets(self.file, frames, dim)
        self.offsets = [offsets[k] for k in L.KINDS]
        self.nbytes = [L.row_bytes(k, frames, dim) for k in L.KINDS]
        self.rows = int(shard.rows)
        self.crc: List[int] = [int(c) for c in shard.crc[:len(L.KINDS)]]
        self._fd = os.open(self.file, os.O_RDWR)

    @property
    def full(self) -> bool:
        return self.rows >= self.shard.capacity

    def append(self, rows: Sequence[np.ndarray], count: int = 1) -> List[int]:
        """Write `count` videos' rows (as row_arrays gives them, with a leading [count] axis when
        count > 1); returns the running crc32 of each kind."""
        if self.rows + count > self.shard.capacity:
            raise ValueError(f"{self.file}: {count} rows do not fit ({self.rows} of {self.shard.capacity} used)")
        for i, arr in enumerate(rows):
            data = memoryview(np.ascontiguousarray(arr)).cast("B")
            if len(data) != count * self.nbytes[i]:
                raise ValueError(f"a {L.KINDS[i]} row block has {len(data)} bytes, the cache stores "
                                 f"{count} x {self.nbytes[i]}")
            self.crc[i] = zlib.crc32(data, self.crc[i])
            at = self.offsets[i] + self.rows * self.nbytes[i]
            while data:   # a regular-file write may be short; finish it
                n = os.pwrite(self._fd, data, at)
                data, at = data[n:], at + n
        self.rows += count
        return list(self.crc)

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class ShardSeries:
    """Writes blocks of rows into fresh shards numbered from `first`, each holding up to `per_shard`
    rows (`total`, when known, sizes the last one exactly); `finish` makes them durable."""

    def __init__(self, cache_path: str, first: int, per_shard: int, frames: int, dim: int,
                 total: Optional[int] = None):
        self.path, self.number, self.per_shard, self.frames, self.dim = cache_path, first, per_shard, frames, dim
        self.left = total
        self.shards: List[M.Shard] = []
        self._open: Optional[ShardAppender] = None

    def write(self, emb: np.ndarray, t: np.ndarray, vidx: np.ndarray, columns: Dict[str, Sequence]) -> None:
        """emb [b, N, D] f16, t [b, N] f32, vidx [b, D] f16, and b values of every per-video column."""
        i = 0
        while i < len(emb):   # whole blocks, split only where a shard fills up
            if self._open is None or self._open.full:
                self._next()
            j = min(len(emb), i + self._open.shard.capacity - self._open.rows)
            self._open.append((emb[i:j], np.ascontiguousarray(t[i:j], np.float32), vidx[i:j]), j - i)
            for name in S.VIDEO_COLUMNS:
                self._open.shard.videos[name].extend(np.asarray(columns[name][i:j]).tolist())
            i = j

    def _next(self) -> None:
        self._close()
        capacity = self.per_shard if self.left is None else max(1, min(self.per_shard, self.left))
        self.shards.append(M.Shard(L.shard_name(self.number), 0, capacity, videos=M.empty_columns()))
        self.number += 1
        for name in (L.frames_name(self.shards[-1].name), L.videos_name(self.shards[-1].name)):
            if os.path.exists(L.shard_file(self.path, name)):   # a killed copy's: start afresh
                os.unlink(L.shard_file(self.path, name))
        self._open = ShardAppender(self.path, self.shards[-1], self.frames, self.dim)

    def _close(self) -> None:
        if self._open is not None:
            self._open.sync()
            last = self._open.shard
            last.rows = self._open.rows
            if self.left is not None:
                self.left -= last.rows
            self._open.close()
            last.crc = list(self._open.crc) + [M.write_videos(L.shard_file(self.path, L.videos_name(last.name)),
                                                              last.videos)]
            self._open = None

    def finish(self) -> List[M.Shard]:
        """The written shards, synced to disk (the caller commits a manifest that maps them)."""
        self._close()
        M.sync_folder(L.sidecar(self.path))
        for s in self.shards:
            s.videos = None
        return self.shards


def copy_rows(reader, path: str, first: int, per_shard: int, what: str, progress: bool = True,
              block: int = 256) -> List[M.Shard]:
    """Every video of an open CacheReader, in its row order, into fresh shards of the cache at `path`
    numbered from `first` (compaction, migration); the stored video index is copied, or pooled when
    the cache has none."""
    from clipvid.progress import progress as progress_display
    V, N, D = reader.num_videos, reader.frames, reader.dim
    series = ShardSeries(path, first, per_shard, N, D, total=V)
    index = reader.video_index(progress=False) if reader.has_index else None
    with progress_display(total=V, desc=f"{path}: {what}", unit="video", quiet=not progress) as shown:
        for start in range(0, V, block):
            rows = np.arange(start, min(start + block, V))
            emb = reader.emb(rows)                                               # [b, N, D]
            series.write(emb, reader.times(rows), video_row(emb) if index is None else index[rows],
                         {name: col[rows] for name, col in reader.columns.items()})
            shown.update(len(rows))
    return series.finish()


def running_crc(file: str, offsets: Sequence[int], start: int, count: int, crc: Sequence[int], frames: int,
                dim: int, block: int = 256) -> Iterator[List[int]]:
    """Yield the running crc32 of every kind after each of `count` rows from row `start` of a frame
    file, reading sequentially."""
    crc = [int(c) for c in crc]
    sizes = [L.row_bytes(k, frames, dim) for k in L.KINDS]
    with open(file, "rb") as h:
        for first in range(start, start + count, block):
            n = min(block, start + count - first)
            chunks = []
            for off, nb in zip(offsets, sizes):
                h.seek(off + first * nb)
                chunks.append(h.read(n * nb))
            for j in range(n):
                pieces = [c[j * nb:(j + 1) * nb] for c, nb in zip(chunks, sizes)]
                if any(len(p) < nb for p, nb in zip(pieces, sizes)):
                    return
                crc = [zlib.crc32(p, c) for p, c in zip(pieces, crc)]
                yield list(crc)


def intact_rows(file: str, base: M.Shard, videos: List[dict], frames: int, dim: int) -> int:
    """How many of the journalled `videos` (rows from base.rows on, in order) a killed writer left whole
    in the frame file: each record carries the shard's running checksums after its row."""
    if not videos or not os.path.exists(file):
        return 0
    base.capacity, offsets = L.frame_offsets(file, frames, dim)
    good = 0
    sums = running_crc(file, [offsets[k] for k in L.KINDS], base.rows, min(len(videos), base.capacity - base.rows),
                       base.crc[:len(L.KINDS)], frames, dim)
    for meta, got in zip(videos, sums):
        if meta["row"] != base.rows + good or got != meta["crc"]:
            break
        good += 1
    return good


def file_crc(path: str, nbytes: int, offset: int = 0, chunk: int = 64 << 20) -> int:
    """crc32 of nbytes of a file from `offset`, read in large chunks."""
    crc = 0
    with open(path, "rb") as f:
        f.seek(offset)
        left = nbytes
        while left:
            data = f.read(min(chunk, left))
            if not data:
                raise OSError(f"{path}: file ends early")
            crc = zlib.crc32(data, crc)
            left -= len(data)
    return crc
