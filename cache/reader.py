"""Read a cache (schema 1 or 2) into numpy; every problem becomes a one-line CacheError naming the file.

Readers see one (V, N, D) array whatever the layout. Schema 2 (cache.layout): the manifest's
metadata is loaded at open and the shard files are opened at once, so the reader holds a fixed
snapshot even while a writer appends or a compaction swaps files. Schema 1 (frames inside the
HDF5 file) is read as it is.
"""
import json
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import h5py
import numpy as np

from cache import layout as L
from cache import schema as S
from clipvid.errors import CacheError

_OPEN_TRIES = 5   # a compaction may remove shards between reading the manifest and opening them


def _strings(ds) -> np.ndarray:
    return np.array(ds.asstr()[()], dtype=object) if len(ds) else np.array([], dtype=object)


class CacheReader:
    """A consistent, read-only snapshot of one cache."""

    def __init__(self, path: str):
        self.path = path
        if not os.path.exists(path):
            raise CacheError(path, "no such cache file")
        if os.path.isdir(path):
            raise CacheError(path, "is a directory, not a cache file")
        self._f = None
        self._shards: Dict[str, L.ShardRows] = {}
        for attempt in range(_OPEN_TRIES):
            ino = os.stat(path).st_ino
            self._open_h5()
            try:
                self._load_meta()
                if self.schema_version >= 2:
                    self._open_shards()
                break
            except FileNotFoundError as exc:
                self.close()
                if os.stat(path).st_ino == ino or attempt == _OPEN_TRIES - 1:
                    raise CacheError(path, f"shard file {exc.filename} is missing (a cache is the file and its "
                                           f"{os.path.basename(L.sidecar(path))} folder; move them together)")
            except CacheError:
                self.close()
                raise
            except (KeyError, OSError, ValueError, TypeError, RuntimeError, UnicodeDecodeError) as exc:
                self.close()
                raise CacheError(path, f"damaged cache: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")

    def _open_h5(self) -> None:
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as exc:
            raise CacheError(self.path, f"not a readable HDF5 file (truncated or corrupted?): "
                                        f"{str(exc).splitlines()[0]}")

    def _load_meta(self) -> None:
        f, a = self._f, self._f.attrs
        version = a.get("schema_version")
        if version is None:
            raise CacheError(self.path, "not a clipvid cache (no schema_version attribute)")
        self.schema_version = int(version)
        if self.schema_version > S.SCHEMA_VERSION:
            raise CacheError(self.path, f"schema version {self.schema_version} is newer than this clipvid "
                                        f"understands ({S.SCHEMA_VERSION}); upgrade clipvid")
        parts = (S.EMB, S.TIMES, S.IDS, S.LABELS) if self.schema_version < 2 else \
            (S.SHARD_NAMES, S.SHARD_ROWS, S.SHARD_STR, S.SHARD_CRC, S.ROW)
        missing = [k for k in (*parts, S.CLASS_NAMES, S.TEXT_EMB) if k not in f]
        if missing:
            raise CacheError(self.path, f"damaged cache: missing {', '.join(missing)}")
        self.settings: Dict[str, Any] = {k: (a[k].item() if hasattr(a[k], "item") else a[k])
                                         for k in S.ATTR_KEYS if k in a}
        self.frames = int(a["frames"])
        self.dim = int(a["dim"])
        self.random_weights = bool(a.get("random_weights", False))
        self.class_names: List[str] = list(_strings(f[S.CLASS_NAMES]))
        self.text_emb = f[S.TEXT_EMB][()]
        fids = _strings(f[S.FAIL_IDS]) if S.FAIL_IDS in f else []
        freasons = _strings(f[S.FAIL_REASONS]) if S.FAIL_REASONS in f else []
        self.failures: List[Tuple[str, str]] = list(zip(fids, freasons))
        if self.schema_version < 2:
            self._load_schema1()
            return
        self.shard_names = [str(x) for x in _strings(f[S.SHARD_NAMES])]
        self.shard_rows = f[S.SHARD_ROWS][()].astype(np.int64)
        self.shard_str_bytes = f[S.SHARD_STR][()].astype(np.int64)
        self.shard_crc = f[S.SHARD_CRC][()].astype(np.uint32)
        self.row_map = f[S.ROW][()].astype(np.int64)                       # [V] physical row per video
        S_ = len(self.shard_names)
        if len(self.shard_rows) != S_ or len(self.shard_str_bytes) != S_ or self.shard_crc.shape != (S_, 5):
            raise CacheError(self.path, "damaged cache: the shard list is inconsistent")
        if len(self.row_map) and (self.row_map.min() < 0 or self.row_map.max() >= self.shard_rows.sum()):
            raise CacheError(self.path, "damaged cache: a video row points past the committed shard rows")
        self._f.close()
        self._f = None   # everything else comes from the shard files

    def _load_schema1(self) -> None:
        f = self._f
        self.ids = _strings(f[S.IDS])
        self.labels = f[S.LABELS][()].astype(np.int32)
        n = len(self.ids)
        blank = np.array([""] * n, dtype=object)
        self.splits = _strings(f[S.SPLITS]) if S.SPLITS in f else blank
        self.captions = _strings(f[S.CAPTIONS]) if S.CAPTIONS in f else blank.copy()
        self.content = blank.copy()     # schema 1 recorded no content fingerprints
        self.decoder = blank.copy()     # nor which decoder sampled a video
        self.n_distinct = f[S.N_DISTINCT][()] if S.N_DISTINCT in f else np.zeros(n, np.int32)
        self.duration = f[S.DURATION][()] if S.DURATION in f else np.zeros(n, np.float32)
        self.fps = f[S.FPS][()] if S.FPS in f else np.zeros(n, np.float32)
        self._emb, self._t = f[S.EMB], f[S.TIMES]
        if self._emb.shape[0] != n:
            raise CacheError(self.path, f"damaged cache: {self._emb.shape[0]} embedding rows for {n} ids")

    def _open_shards(self) -> None:
        for kind in L.KINDS:
            shape, dtype = L.row_shape(kind, self.frames, self.dim)
            files = [L.shard_file(self.path, s, kind) for s in self.shard_names]
            self._shards[kind] = L.ShardRows(files, self.shard_rows, shape, dtype)
            for name, count in zip(files, self.shard_rows):
                if os.path.getsize(name) < count * self._shards[kind].row_nbytes:
                    raise CacheError(self.path, f"damaged cache: shard {name} is shorter than its {count} committed rows")
        # Per-video metadata: fixed-size numbers and NUL-ended strings, in physical row order.
        num = self._shards["num"].read(np.arange(self._shards["num"].total, dtype=np.int64))
        cols: List[List[str]] = [[] for _ in L.STR_FIELDS]
        for name, rows, nbytes in zip(self.shard_names, self.shard_rows, self.shard_str_bytes):
            with open(L.shard_file(self.path, name, "str"), "rb") as fh:
                blob = fh.read(int(nbytes))
            if len(blob) < nbytes:
                raise CacheError(self.path, f"damaged cache: {fh.name} is shorter than its committed bytes")
            for col, part in zip(cols, L.decode_strings(blob, int(rows), fh.name)):
                col.extend(part)
        live = self.row_map
        if len(live) == len(num) and (live == np.arange(len(live))).all():
            live = slice(None)   # no replaced videos: logical rows are the physical rows
        self.ids, self.splits, self.captions, self.content, self.decoder = (np.array(c, dtype=object)[live] for c in cols)
        self.labels = num["label"][live].astype(np.int32)
        self.n_distinct = num["n_distinct"][live]
        self.duration = num["duration"][live]
        self.fps = num["fps"][live]

    # -- properties -------------------------------------------------------------
    @property
    def num_videos(self) -> int:
        return len(self.ids)

    @property
    def clip_model(self) -> str:
        return str(self.settings.get("clip_model", "?"))

    @property
    def fingerprint(self) -> str:
        return S.fingerprint(self.settings)

    @property
    def prompt_templates(self) -> List[str]:
        return json.loads(self.settings.get("prompt_templates", "[]"))

    @property
    def emb_nbytes(self) -> int:
        return self.num_videos * self.frames * self.dim * 2

    # -- arrays -----------------------------------------------------------------
    def _rows(self, kind: str, rows: np.ndarray) -> np.ndarray:
        """Rows (increasing, unique logical indices) of `kind` (emb, t or vidx)."""
        if self.schema_version < 2:
            ds = {"emb": self._emb, "t": self._t}[kind]
            if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
                return ds[int(rows[0]):int(rows[-1]) + 1]          # one contiguous slice
            return ds[rows] if len(rows) else np.empty((0,) + ds.shape[1:], ds.dtype)
        physical = self.row_map[rows]
        if len(physical) > 1 and (np.diff(physical) <= 0).any():      # replaced videos: read sorted
            order = np.argsort(physical, kind="stable")
            out = np.empty((len(rows),) + self._shards[kind].shape, self._shards[kind].dtype)
            out[order] = self._shards[kind].read(physical[order])
            return out
        return self._shards[kind].read(physical)

    def _pick(self, kind: str, index: Optional[Sequence[int]]) -> np.ndarray:
        if index is None:
            return self._rows(kind, np.arange(self.num_videos, dtype=np.int64))
        index = np.asarray(index, dtype=np.int64)
        if len(index) and (index.min() < 0 or index.max() >= self.num_videos):
            raise IndexError(f"row index out of range for {self.num_videos} videos")
        uniq, inverse = np.unique(index, return_inverse=True)
        out = self._rows(kind, uniq)
        return out if len(uniq) == len(index) and (uniq == index).all() else out[inverse]

    def emb(self, index: Optional[Sequence[int]] = None) -> np.ndarray:
        """Frame embeddings [V, N, D] float16, all rows or the rows in `index` (in that order)."""
        return self._pick("emb", index)

    def times(self, rows: Optional[Sequence[int]] = None) -> np.ndarray:
        """Row timestamps [V, N] float32 (s), all videos or only the given rows (in that order)."""
        return self._pick("t", rows)

    def iter_emb(self, batch: int = 256) -> Iterator[Tuple[int, np.ndarray]]:
        """Yield (start row, [b, N, D] float16) blocks, for caches larger than memory; each block
        is one large sequential read per shard it spans."""
        for start in range(0, self.num_videos, batch):
            stop = min(start + batch, self.num_videos)
            yield start, self._rows("emb", np.arange(start, stop, dtype=np.int64))

    def video_index(self, progress: bool = True) -> L.RowView:
        """The L2-normalised mean-pooled video embedding of every video, [V, D] float16, memory-mapped.

        Returns a cache.layout.RowView: index it like an array (rows, slices, index arrays) or use
        its `parts` (a short list of (first row, memmap)) to scan it without loading it all. Schema 1
        caches build it once into the sidecar folder (one streamed pass) and reuse it after."""
        if self.schema_version >= 2:
            maps = self._shards["vidx"].memmaps()
            parts = L.logical_parts(maps, self._shards["vidx"].starts, self.row_map)
            return L.RowView(parts, (self.num_videos, self.dim), np.float16)
        from cache.legacy import legacy_index
        return legacy_index(self, progress)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        for rows in self._shards.values():
            rows.close()
        self._shards = {}

    def __enter__(self) -> "CacheReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_cache(path: str) -> CacheReader:
    """Open a cache for reading; raises CacheError with a one-line reason."""
    return CacheReader(path)


def read_settings(path: str) -> Dict[str, Any]:
    """Only the root attributes (cheap: no per-video data is read); raises CacheError."""
    try:
        with h5py.File(path, "r") as f:
            a = f.attrs
            if "schema_version" in a and int(a["schema_version"]) <= S.SCHEMA_VERSION:
                return {k: (a[k].item() if hasattr(a[k], "item") else a[k]) for k in S.ATTR_KEYS if k in a}
    except (OSError, KeyError, ValueError, TypeError, RuntimeError):
        pass
    with open_cache(path) as r:   # not a usable cache: open it for the one-line reason
        return dict(r.settings)
