"""Where a cache's pieces live on disk, and raw reads of shard rows at their HDF5 file offsets.

A cache `x.h5` is the small manifest file `x.h5` plus its sidecar folder `x.h5.d/`:

    x.h5.d/<shard>.frames.h5  HDF5: emb [C, N, D] float16, t [C, N] float32, vidx [C, D] float16, each
                              one contiguous block (allocated at creation, sparse until written)
    x.h5.d/<shard>.videos.h5  HDF5: one (R,) dataset per per-video column (schema.VIDEO_COLUMNS)
    x.h5.d/journal            records of videos written to the open shard but not yet committed
    x.h5.d/lock               held (flock) by the one writer

The manifest says how many rows of each shard are committed and maps them, in video order, into
its virtual datasets (/frames/emb, /videos/id, ...). Frame rows past the committed count (a killed
writer's tail, the unused capacity) are in no mapping; the next writer overwrites them. clipvid's own
readers skip the virtual layer and read the contiguous blocks at their file offsets.
"""
import errno
import os
import re
from typing import Dict, Iterator, List, Sequence, Tuple

import h5py
import numpy as np

KINDS = ("emb", "t", "vidx")            # the frame file's datasets, written row by row at raw offsets
CRC_PARTS = KINDS + ("videos",)         # what /shards/crc checks, by column: committed rows, the videos values
SHARD_RE = re.compile(r"^(\d{6})\.(frames|videos)\.h5$")
_MAX_IO = 1 << 30   # bytes per pread call (Linux caps one call at ~2 GiB)


def sidecar(path: str) -> str:
    """The folder holding a cache's shards, journal and lock."""
    return path + ".d"


def journal_file(path: str) -> str:
    """The writer's journal: present only while a run writes, or after a run was killed."""
    return os.path.join(sidecar(path), "journal")


def frames_name(shard: str) -> str:
    return f"{shard}.frames.h5"


def videos_name(shard: str) -> str:
    return f"{shard}.videos.h5"


def shard_file(path: str, name: str) -> str:
    """A file of the sidecar folder, by name (frames_name / videos_name)."""
    return os.path.join(sidecar(path), name)


def shard_name(number: int) -> str:
    return f"{number:06d}"


def row_shape(kind: str, frames: int, dim: int) -> Tuple[Tuple[int, ...], type]:
    return {"emb": ((frames, dim), np.float16), "t": ((frames,), np.float32), "vidx": ((dim,), np.float16)}[kind]


def row_bytes(kind: str, frames: int, dim: int) -> int:
    """Bytes of one row of a frame dataset of this kind."""
    shape, dtype = row_shape(kind, frames, dim)
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def create_frames(file: str, capacity: int, frames: int, dim: int) -> None:
    """A new frame file for `capacity` rows: contiguous datasets allocated now and never filled, so
    the file is sparse until rows are written into it and each dataset sits at a fixed offset."""
    tmp = f"{file}.tmp-{os.getpid()}"
    with h5py.File(tmp, "w") as f:
        for kind in KINDS:
            shape, dtype = row_shape(kind, frames, dim)
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_layout(h5py.h5d.CONTIGUOUS)
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
            space = h5py.h5s.create_simple((int(capacity),) + shape)
            h5py.h5d.create(f.id, kind.encode(), h5py.h5t.py_create(np.dtype(dtype)), space, dcpl=dcpl)
    os.replace(tmp, file)


def frame_offsets(file: str, frames: int, dim: int) -> Tuple[int, Dict[str, int]]:
    """(capacity in rows, {kind: byte offset of row 0}) of a frame file; ValueError when it is not one."""
    must_exist(file)
    with h5py.File(file, "r") as f:
        offsets, capacity = {}, None
        for kind in KINDS:
            shape, dtype = row_shape(kind, frames, dim)
            ds = f[kind]
            if ds.shape[1:] != shape or ds.dtype != np.dtype(dtype) or ds.id.get_offset() is None:
                raise ValueError(f"{file}: {kind} is {ds.dtype} {ds.shape}, not a contiguous {np.dtype(dtype)} "
                                 f"(rows, {', '.join(map(str, shape))}) block")
            capacity = ds.shape[0] if capacity is None else min(capacity, ds.shape[0])
            offsets[kind] = int(ds.id.get_offset())
    return int(capacity), offsets


def must_exist(file: str) -> None:
    """FileNotFoundError naming `file` (HDF5's own error does not carry the name)."""
    if not os.path.exists(file):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), file)


def runs(sorted_rows: np.ndarray) -> Iterator[Tuple[int, int, int]]:
    """(position in sorted_rows, first row, count) of each run of consecutive rows."""
    if not len(sorted_rows):
        return
    breaks = np.flatnonzero(np.diff(sorted_rows) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [len(sorted_rows)]))
    for s, e in zip(starts.tolist(), ends.tolist()):
        yield s, int(sorted_rows[s]), e - s


def mapping_runs(row_map: np.ndarray, shard_starts: np.ndarray) -> np.ndarray:
    """[M, 3] (logical first, physical first, count): the pieces of row_map [V] that are consecutive
    rows of one shard. With no replaced videos there is one per shard, whatever V."""
    row_map = np.asarray(row_map, np.int64)
    if not len(row_map):
        return np.zeros((0, 3), np.int64)
    shard_of = np.searchsorted(shard_starts, row_map, side="right") - 1
    cut = np.flatnonzero((np.diff(row_map) != 1) | (np.diff(shard_of) != 0)) + 1
    starts = np.concatenate(([0], cut))
    ends = np.concatenate((cut, [len(row_map)]))
    return np.stack([starts, row_map[starts], ends - starts], 1).astype(np.int64)


def expand_runs(table: np.ndarray) -> np.ndarray:
    """The row map [V] (physical row of each logical row) of a runs table [M, 3]."""
    if not len(table):
        return np.zeros(0, np.int64)
    counts = table[:, 2]
    offset = np.repeat(table[:, 1] - table[:, 0], counts)
    return (np.arange(int(counts.sum()), dtype=np.int64) + offset).astype(np.int64)


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
    """Rows of one kind (emb, t or vidx) over a list of shard files, addressed by physical row; the
    rows of file i start at byte offsets[i] (a contiguous HDF5 dataset, or 0 for a raw file).

    File descriptors are opened once, so a snapshot stays readable even after a compaction
    removes the files it was made from.
    """

    def __init__(self, files: Sequence[str], counts: Sequence[int], shape: Tuple[int, ...], dtype,
                 offsets: Sequence[int] = ()):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.row_nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self.files = list(files)
        self.offsets = [int(o) for o in offsets] or [0] * len(self.files)
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
                at = self.offsets[s] + (first - int(self.starts[s])) * self.row_nbytes
                pread_into(self._fds[s], out[pos:pos + take], at, self.files[s])
                pos, first, count = pos + take, first + take, count - take
        return out

    def memmaps(self) -> List[np.ndarray]:
        """One read-only memory map [rows, *shape] per shard (empty shards skipped)."""
        maps = []
        for fd, off, (a, b) in zip(self._fds, self.offsets, zip(self.starts[:-1], self.starts[1:])):
            if b > a:
                maps.append(np.memmap(os.fdopen(os.dup(fd), "rb"), self.dtype, "r", off, (int(b - a),) + self.shape))
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
    live = [i for i in range(len(shard_starts) - 1) if shard_starts[i + 1] > shard_starts[i]]
    by_shard = dict(zip(live, maps))
    parts: List[Tuple[int, np.ndarray]] = []
    for logical, physical, count in mapping_runs(row_map, shard_starts).tolist():
        sh = int(np.searchsorted(shard_starts, physical, side="right")) - 1
        local = int(physical - shard_starts[sh])
        parts.append((logical, by_shard[sh][local:local + count]))
    return parts
