"""Where a cache's pieces live on disk, and reads of raw shard rows (no HDF5 here).

A cache `x.h5` is the small manifest file `x.h5` plus its sidecar folder `x.h5.d/`:

    x.h5.d/<shard>.emb    [R, N, D] float16, C order, little-endian   frame embeddings
    x.h5.d/<shard>.t      [R, N]    float32                           row timestamps (s)
    x.h5.d/<shard>.vidx   [R, D]    float16                           unit mean-pooled video embedding
    x.h5.d/<shard>.num    [R] records of label int32, n_distinct int32, duration float32, fps float32
    x.h5.d/<shard>.str    per row: id, split, caption, content fingerprint, each UTF-8 ending in NUL
    x.h5.d/journal        records of videos written to the open shard but not yet committed
    x.h5.d/lock           held (flock) by the one writer
    x.h5.d/index-<key>.vidx   schema-1 caches only: the video index built on first request

Shard files only grow; the manifest says how many rows of each are committed, so rows past
that count (a killed writer's tail) are invisible to readers and cut off by the next writer.
"""
import os
import re
from typing import Iterator, List, Sequence, Tuple

import numpy as np

KINDS = ("emb", "t", "vidx", "num")     # fixed-size rows
FILES = KINDS + ("str",)                 # every file of a shard; .str rows vary in length
SHARD_RE = re.compile(r"^(\d{6})\.(emb|t|vidx|num|str)$")
NUM = np.dtype([("label", "<i4"), ("n_distinct", "<i4"), ("duration", "<f4"), ("fps", "<f4")])
STR_FIELDS = ("id", "split", "caption", "content", "decoder")
# Shards written before the decoder column hold the first four fields per row; the rest read "".
_OLD_FIELDS = 4
_MAX_IO = 1 << 30   # bytes per pread call (Linux caps one call at ~2 GiB)


def sidecar(path: str) -> str:
    """The folder holding a cache's shards, journal and lock."""
    return path + ".d"


def journal_file(path: str) -> str:
    """The writer's journal: present only while a run writes, or after a run was killed."""
    return os.path.join(sidecar(path), "journal")


def shard_file(path: str, shard: str, kind: str) -> str:
    return os.path.join(sidecar(path), f"{shard}.{kind}")


def shard_name(number: int) -> str:
    return f"{number:06d}"


def row_bytes(kind: str, frames: int, dim: int) -> int:
    """Bytes of one row of a fixed-size shard file of this kind."""
    return {"emb": frames * dim * 2, "t": frames * 4, "vidx": dim * 2, "num": NUM.itemsize}[kind]


def row_shape(kind: str, frames: int, dim: int) -> Tuple[Tuple[int, ...], type]:
    return {"emb": ((frames, dim), np.float16), "t": ((frames,), np.float32), "vidx": ((dim,), np.float16),
            "num": ((), NUM)}[kind]


def encode_strings(*fields: str) -> bytes:
    """One row of a .str file: the STR_FIELDS, each UTF-8 and ending in NUL (a NUL inside is a space)."""
    return "".join(str(f).replace("\0", " ") + "\0" for f in fields).encode("utf-8")


def decode_strings(blob: bytes, rows: int, name: str) -> List[List[str]]:
    """The STR_FIELDS columns of `rows` rows of a .str file."""
    parts = blob.decode("utf-8").split("\0")
    width = next((w for w in (len(STR_FIELDS), _OLD_FIELDS) if len(parts) == rows * w + 1), 0)
    if not width or parts[-1]:
        raise ValueError(f"{name}: {len(parts) - 1} strings for {rows} rows")
    return [parts[k:-1:width] if k < width else [""] * rows for k in range(len(STR_FIELDS))]


def runs(sorted_rows: np.ndarray) -> Iterator[Tuple[int, int, int]]:
    """(position in sorted_rows, first row, count) of each run of consecutive rows."""
    if not len(sorted_rows):
        return
    breaks = np.flatnonzero(np.diff(sorted_rows) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [len(sorted_rows)]))
    for s, e in zip(starts.tolist(), ends.tolist()):
        yield s, int(sorted_rows[s]), e - s


def pread_into(fd: int, buf: np.ndarray, offset: int, name: str) -> None:
    """Fill the contiguous array `buf` from `fd` at `offset` with as few large reads as possible."""
    view = memoryview(buf).cast("B")
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:done + _MAX_IO]], offset + done)
        if n <= 0:
            raise OSError(f"{name}: file ends early (truncated shard)")
        done += n


class ShardRows:
    """Rows of one kind (emb, t or vidx) over a list of shard files, addressed by physical row.

    File descriptors are opened once, so a snapshot stays readable even after a compaction
    removes the files it was made from.
    """

    def __init__(self, files: Sequence[str], counts: Sequence[int], shape: Tuple[int, ...], dtype):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.row_nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self.files = list(files)
        self.starts = np.concatenate(([0], np.cumsum(counts, dtype=np.int64))).astype(np.int64)
        self._fds: List[int] = []
        try:
            for f in self.files:
                self._fds.append(os.open(f, os.O_RDONLY))
        except OSError:
            self.close()
            raise

    @property
    def total(self) -> int:
        return int(self.starts[-1])

    def read(self, physical: np.ndarray) -> np.ndarray:
        """Rows at increasing physical indices -> [len, *shape]; one read per run of neighbours."""
        out = np.empty((len(physical),) + self.shape, self.dtype)
        for pos, first, count in runs(physical):
            while count:   # a run may cross from one shard into the next
                s = int(np.searchsorted(self.starts, first, side="right")) - 1
                take = min(count, int(self.starts[s + 1]) - first)
                pread_into(self._fds[s], out[pos:pos + take], (first - int(self.starts[s])) * self.row_nbytes,
                           self.files[s])
                pos, first, count = pos + take, first + take, count - take
        return out

    def memmaps(self) -> List[np.ndarray]:
        """One read-only memory map [rows, *shape] per shard (empty shards skipped)."""
        maps = []
        for fd, (a, b) in zip(self._fds, zip(self.starts[:-1], self.starts[1:])):
            if b > a:
                mm = np.memmap(os.fdopen(os.dup(fd), "rb"), self.dtype, "r", 0, (int(b - a),) + self.shape)
                maps.append(mm)
        return maps

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []


class RowView:
    """A read-only [V, ...] array-like stitched from memory maps, in logical row order.

    `parts` is a list of (first logical row, memmap); the rows of part i are logical rows
    first..first+len(mm)-1. With no replaced videos there is one part per shard. Nothing is read
    into memory until indexed; `np.asarray(view)` materialises all of it.
    """

    def __init__(self, parts: List[Tuple[int, np.ndarray]], shape: Tuple[int, ...], dtype):
        self.parts = parts
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self._starts = np.array([p[0] for p in parts] + [self.shape[0]], np.int64)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            key = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= key < len(self):
                raise IndexError(f"row {key} out of range for {len(self)} rows")
            p = int(np.searchsorted(self._starts, key, side="right")) - 1
            return np.asarray(self.parts[p][1][key - self.parts[p][0]])
        rows = np.arange(len(self))[key] if isinstance(key, slice) else np.asarray(key, np.int64)
        out = np.empty((len(rows),) + self.shape[1:], self.dtype)
        if not len(rows):
            return out
        which = np.searchsorted(self._starts, rows, side="right") - 1
        for p in np.unique(which).tolist():
            sel = which == p
            first, mm = self.parts[p]
            out[sel] = mm[rows[sel] - first]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def logical_parts(maps: List[np.ndarray], shard_starts: np.ndarray, row_map: np.ndarray) -> List[Tuple[int, np.ndarray]]:
    """Split shard memory maps into pieces that follow the logical order given by row_map [V]."""
    parts: List[Tuple[int, np.ndarray]] = []
    if not len(row_map):
        return parts
    # A new piece starts wherever the next logical row is not the next physical row of the same shard.
    shard_of = np.searchsorted(shard_starts, row_map, side="right") - 1
    cut = np.flatnonzero((np.diff(row_map) != 1) | (np.diff(shard_of) != 0)) + 1
    starts = np.concatenate(([0], cut))
    ends = np.concatenate((cut, [len(row_map)]))
    live = [i for i in range(len(shard_starts) - 1) if shard_starts[i + 1] > shard_starts[i]]
    by_shard = dict(zip(live, maps))
    for s, e in zip(starts.tolist(), ends.tolist()):
        sh = int(shard_of[s])
        local = int(row_map[s] - shard_starts[sh])
        parts.append((s, by_shard[sh][local:local + (e - s)]))
    return parts
