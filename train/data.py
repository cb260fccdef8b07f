"""Cached frame embeddings in memory or streamed from disk, a block-shuffled batch order, frame statistics."""
import io
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, List, Optional, Tuple

import numpy as np

from cache.layout import pread_into, runs as row_runs
from cache.reader import CacheReader
from clipvid.resources import available_memory, spill_dir

READ_BLOCK = 512  # videos per scan block; big enough to amortise chunk look-ups, small enough for RAM
SHUFFLE_BLOCK = 64   # consecutive training videos that move together in the epoch order (6.5 MB at N=100, D=512)
SHUFFLE_WINDOW = 32  # blocks whose videos are shuffled together (and read from disk together)
GAP = 4              # rows between two wanted ones below which reading through beats a second read


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


class SpillRows:
    """A [R, ...] array in a file, written and read with pwrite/pread in blocks, never memory-mapped.

    For data that grows with the cache (a [V, D] table, a split's frames, a run's video_emb.npy): its
    bytes live in the page cache, which the kernel can write back and drop, while the process holds only
    the block it is working on. (Pages touched through a memory map count in the process's resident set
    until unmapped, so a scan through a mapped 2 GB file made the process 2 GB larger.)
    Without `path` the file is an unlinked temporary one, made in clipvid.resources.spill_dir(beside=...)
    (--tmp-dir, else the folder of `beside`, the cache: /tmp is memory on many systems); with it, a .npy
    file that np.load reads.
    """

    def __init__(self, shape: Tuple[int, ...], dtype, what: str = "rows", path: Optional[str] = None,
                 beside: Optional[str] = None):
        import tempfile
        self.shape, self.dtype = tuple(int(n) for n in shape), np.dtype(dtype)
        self.row_nbytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self.path = path
        if path is None:
            fd, name = tempfile.mkstemp(prefix=f".clipvid-{what}-", dir=spill_dir(beside=beside))
            os.unlink(name)    # gone from the folder at once; the descriptor keeps the bytes
            self.offset = 0
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                         "shape": self.shape})
            os.pwrite(fd, header.getvalue(), 0)
            self.offset = len(header.getvalue())
        self.fd = fd
        os.ftruncate(fd, self.offset + self.shape[0] * self.row_nbytes)   # sparse: unwritten rows read as 0

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def write(self, start: int, block: np.ndarray) -> None:
        """Rows start..start+len(block)-1 = block."""
        view = memoryview(np.ascontiguousarray(block, self.dtype)).cast("B")
        at, done = self.offset + int(start) * self.row_nbytes, 0
        while done < len(view):
            done += os.pwrite(self.fd, view[done:], at + done)

    def write_rows(self, at: np.ndarray, block: np.ndarray) -> None:
        """Rows at[i] = block[i] for distinct row indices `at`, one write per run of neighbours."""
        order = np.argsort(np.asarray(at, np.int64), kind="stable")
        for pos, first, count in row_runs(np.asarray(at, np.int64)[order]):
            self.write(first, block[order[pos:pos + count]])

    def read(self, start: int, stop: int, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Rows start..stop-1 [stop - start, ...], into `out` (a reused buffer of at least that many rows)."""
        stop = min(int(stop), len(self))
        n = max(stop - int(start), 0)
        out = np.empty((n,) + self.shape[1:], self.dtype) if out is None else out[:n]
        if n:
            pread_into(self.fd, out, self.offset + int(start) * self.row_nbytes, self.path or "spill file")
        return out

    def __getitem__(self, key) -> np.ndarray:
        """Rows by slice (step 1) or by index array, read with one pread per run of neighbours."""
        if isinstance(key, slice) and key.step in (None, 1):
            start, stop, _ = key.indices(len(self))
            return self.read(start, max(start, stop))
        rows = np.arange(len(self))[key] if isinstance(key, slice) else np.asarray(key, np.int64)
        uniq, inverse = np.unique(rows, return_inverse=True)
        out = np.empty((len(uniq),) + self.shape[1:], self.dtype)
        for pos, first, count in row_runs(uniq):
            self.read(first, first + count, out[pos:pos + count])
        return out if len(uniq) == len(rows) and (uniq == rows).all() else out[inverse.reshape(-1)]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.read(0, len(self))
        return out if dtype is None else out.astype(dtype)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __del__(self) -> None:
        try:
            self.close()
        except (OSError, AttributeError):
            pass


class RowSelection:
    """Rows `at` of a row-indexable array (an ndarray, SpillRows or another RowSelection), in that order;
    read only when sliced, so a probe's [n, D] inputs are not copied out of their spill file at once."""

    def __init__(self, base, at: np.ndarray):
        self.base, self.at = base, np.asarray(at, np.int64)
        self.shape = (len(self.at),) + tuple(base.shape[1:])

    def __len__(self) -> int:
        return len(self.at)

    def __getitem__(self, key) -> np.ndarray:
        return np.asarray(self.base[self.at[key]])


def epoch_order(rows: np.ndarray, rng: np.random.Generator, block: Optional[int] = None,
                window: Optional[int] = None) -> List[np.ndarray]:
    """One epoch's visiting order as windows of positions into `rows`.

    Rows sorted by cache index are cut into blocks of `block`; the blocks are shuffled, grouped
    `window` at a time, and the positions inside each window shuffled. The same order serves the
    in-memory and the from-disk paths, so both train on exactly the same batches.
    """
    block, window = block or SHUFFLE_BLOCK, window or SHUFFLE_WINDOW
    if len(rows) <= block * window:  # one window: a plain permutation (what small sets always had)
        return [rng.permutation(len(rows))]
    by_row = np.argsort(np.asarray(rows), kind="stable")                   # positions in cache order
    blocks = [by_row[s:s + block] for s in range(0, len(by_row), block)]
    picked = rng.permutation(len(blocks))
    out = []
    for s in range(0, len(picked), window):
        members = np.concatenate([blocks[b] for b in picked[s:s + window]])
        out.append(members[rng.permutation(len(members))])
    return out


def contiguous_runs(sorted_rows: np.ndarray, gap: int = GAP, longest: int = 2 * READ_BLOCK) -> List[Tuple[int, int]]:
    """[start, stop) cache-row ranges covering sorted unique rows; small gaps are read through."""
    if not len(sorted_rows):
        return []
    breaks = np.flatnonzero(np.diff(sorted_rows) > gap) + 1
    runs = []
    for part in np.split(sorted_rows, breaks):
        for s in range(0, len(part), longest):
            piece = part[s:s + longest]
            runs.append((int(piece[0]), int(piece[-1]) + 1))
    return runs


def prefetched(loads: List[Callable[[], object]]) -> Iterator[object]:
    """Call each load in turn, the next one on a background thread while the caller uses the current."""
    if not loads:
        return
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(loads[0])
        for nxt in loads[1:]:
            done = pending.result()
            pending = pool.submit(nxt)
            yield done
        yield pending.result()


def read_rows(reader: CacheReader, rows: np.ndarray, frames: Optional[np.ndarray] = None) -> np.ndarray:
    """[len(rows), K, D] float16 from disk in the order given: one contiguous read per run of nearby
    rows (a point-by-point HDF5 selection costs ~15x a slice read per video)."""
    rows = np.asarray(rows, dtype=np.int64)
    uniq, inverse = np.unique(rows, return_inverse=True)
    k = reader.frames if frames is None else len(frames)
    out = np.empty((len(uniq), k, reader.dim), np.float16)
    done = 0
    for lo, hi in contiguous_runs(uniq):
        chunk = reader.emb(np.arange(lo, hi))                                # [hi - lo, N, D]
        want = uniq[done:np.searchsorted(uniq, hi)]
        picked = chunk if len(want) == hi - lo else chunk[want - lo]
        out[done:done + len(want)] = picked if frames is None else picked[:, frames]
        done += len(want)
    return out if np.array_equal(inverse, np.arange(len(rows))) else out[inverse]


class FrameSource:
    """Frame embeddings [V, K, D] float16 of one cache, for a fixed frame subset.

    In memory when they fit in `budget` bytes (slicing is then free); otherwise read from disk in
    large contiguous runs, prefetched on a background thread while the caller computes.
    """

    def __init__(self, reader: CacheReader, frames: np.ndarray, budget: Optional[int] = None):
        self.reader = reader
        self.frames = np.asarray(frames, dtype=np.int64)
        self.num_videos = reader.num_videos
        self.dim = reader.dim
        self.need = self.num_videos * len(self.frames) * self.dim * 2
        self.budget = available_memory() // 2 if budget is None else budget
        self.in_memory = self.need <= self.budget
        # Loaded on the first random access (training epochs): a run that only scans never holds it.
        self._all: Optional[np.ndarray] = None

    def _memory(self) -> Optional[np.ndarray]:
        if self.in_memory and self._all is None:
            self._all = self._load_all()
        return self._all

    @property
    def disk_note(self) -> Optional[str]:
        """One line saying why this run reads its frames from disk (None when they are in memory)."""
        if self.in_memory:
            return None
        gib = lambda b: f"{b / 2 ** 30:.2f} GiB"
        return (f"training from disk: the frames need {gib(self.need)}, more than the in-memory budget of "
                f"{gib(self.budget)} (--max-memory-mb; default half the available RAM); reading "
                f"{SHUFFLE_BLOCK * SHUFFLE_WINDOW}-video windows of contiguous blocks, prefetched")

    def _load_all(self) -> np.ndarray:
        out = np.empty((self.num_videos, len(self.frames), self.dim), np.float16)  # [V, K, D]
        every = np.array_equal(self.frames, np.arange(self.reader.frames))
        for start, block in self.reader.iter_emb(READ_BLOCK):  # block: [b, N, D]
            # Keep only the K rows per video, so memory is V*K*D, never V*N*D.
            out[start:start + len(block)] = block if every else block[:, self.frames]
        return out

    def _read(self, rows: np.ndarray) -> np.ndarray:
        every = len(self.frames) == self.reader.frames  # frame_subset keeps all rows, in order
        return read_rows(self.reader, rows, None if every else self.frames)

    def get(self, rows: np.ndarray) -> np.ndarray:
        """Frame embeddings [len(rows), K, D] float16 for the given video rows, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        if self._memory() is not None:
            return self._all[rows]
        return self._read(rows)

    def blocks(self, rows: Optional[np.ndarray] = None,
               size: int = READ_BLOCK) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """Yield (row indices, [b, K, D] float16) over `rows` (default: every video), in order; from memory
        once training has loaded the frames, else streamed from disk with the next block prefetched."""
        rows = np.arange(self.num_videos) if rows is None else np.asarray(rows, dtype=np.int64)
        parts = [rows[s:s + size] for s in range(0, len(rows), size)]
        if self._all is not None:
            for p in parts:  # a contiguous part is a view, not a copy
                run = len(p) and p[-1] - p[0] + 1 == len(p) and bool((np.diff(p) == 1).all())
                yield p, (self._all[p[0]:p[-1] + 1] if run else self._all[p])
            return
        yield from zip(parts, prefetched([lambda p=p: self._read(p) for p in parts]))

    def batches(self, rows: np.ndarray, windows: List[np.ndarray],
                batch_size: int) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """Yield (positions into `rows`, [B, K, D] float16) in the order of `windows` (see epoch_order).

        From disk, each window is read while the previous one trains; batches may span two windows.
        """
        rows = np.asarray(rows, dtype=np.int64)
        order = np.concatenate(windows) if windows else np.zeros(0, np.int64)
        if self._memory() is not None:
            for s in range(0, len(order), batch_size):
                pick = order[s:s + batch_size]
                yield pick, self._all[rows[pick]]
            return
        held_pos, held_x = np.zeros(0, np.int64), np.zeros((0, len(self.frames), self.dim), np.float16)
        loads = [lambda w=w: self._read(rows[w]) for w in windows]
        for w, x in zip(windows, prefetched(loads)):
            held_pos, held_x = np.concatenate([held_pos, w]), np.concatenate([held_x, x])
            full = len(held_pos) - len(held_pos) % batch_size
            for s in range(0, full, batch_size):
                yield held_pos[s:s + batch_size], held_x[s:s + batch_size]
            held_pos, held_x = held_pos[full:], held_x[full:]
        if len(held_pos):
            yield held_pos, held_x


def frame_statistics(source: FrameSource, rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-dimension mean and std [D] of the frames of `rows`, and std of frame minus its video's mean.

    Accumulated in float64 block by block, so it works on caches that do not fit in memory.
    """
    acc = StatsAccumulator(source.dim)
    for _, block in source.blocks(rows):
        acc.add(block)
    return acc.result()


class StatsAccumulator:
    """Running float64 sums behind frame_statistics, fed block by block (so scans can be shared)."""

    def __init__(self, dim: int):
        self.count, self.total = 0, np.zeros(dim)
        self.squares, self.dev_squares = np.zeros(dim), np.zeros(dim)
        self._buf = np.empty((0, dim), np.float32)

    def add(self, block: np.ndarray) -> None:
        b, k, d = block.shape
        if len(self._buf) < b * k:   # one float32 buffer reused: float64 copies of a block cost 2x the time
            self._buf = np.empty((b * k, d), np.float32)
        x = self._buf[:b * k]                                                  # [b*K, D]
        np.copyto(x, block.reshape(b * k, d))
        sums = np.add.reduce(x.reshape(b, k, d), axis=1, dtype=np.float64)   # [b, D] per video
        self.count += b * k
        self.total += sums.sum(axis=0)
        np.square(x, out=x)             # exact for float16 input (22 significant bits fit in float32's 24)
        squares = np.add.reduce(x, axis=0, dtype=np.float64)                  # [D]
        self.squares += squares
        # sum over frames of (x - video mean)^2 = sum of x^2 - (video sum)^2 / K, per video
        self.dev_squares += squares - (sums ** 2).sum(axis=0) / k

    def result(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = max(self.count, 1)
        mean = self.total / n
        std = np.sqrt(np.maximum(self.squares / n - mean ** 2, 0.0))
        dev_std = np.sqrt(self.dev_squares / n)
        # A floor keeps constant dimensions (and single-frame videos, whose deviation is 0) finite.
        floor = 1e-3 * max(float(std.mean()), 1e-6)
        return (mean.astype(np.float32), np.maximum(std, floor).astype(np.float32),
                np.maximum(dev_std, floor).astype(np.float32))
