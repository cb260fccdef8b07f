"""Read a cache into numpy; every problem becomes a one-line CacheError naming the file.

Readers see one (V, N, D) array whatever the layout. The manifest's metadata is loaded at open
and the shard files are opened at once, so the reader holds a fixed snapshot even while a writer
appends or a compaction swaps files. Older layouts are read in place (cache.legacy).
"""
import json
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import h5py
import numpy as np

from cache import layout as L
from cache import schema as S
from clipvid.errors import CacheError
from cache.manifest import read_videos, strings

_ATTRS = {"id": "ids", "label": "labels", "split": "splits", "caption": "captions", "content": "content",
          "n_distinct": "n_distinct", "duration": "duration", "fps": "fps", "decoder": "decoder"}
_OPEN_TRIES = 5   # a compaction may remove shards between reading the manifest and opening them


class CacheReader:
    """A consistent, read-only snapshot of one cache."""

    def __init__(self, path: str, columns: Optional[Sequence[str]] = None):
        self.path = path
        # The per-video columns to read (the id always; default every one): a writer opening a large
        # cache needs its ids only, and strings are most of what an open reads.
        self._wanted = None if columns is None else ("id", *columns)
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
        self.settings: Dict[str, Any] = {k: (a[k].item() if hasattr(a[k], "item") else a[k])
                                         for k in S.ATTR_KEYS if k in a}
        self.frames = int(a["frames"])
        self.dim = int(a["dim"])
        self.random_weights = bool(a.get("random_weights", False))
        self.legacy = self.schema_version < S.SCHEMA_VERSION
        if self.legacy:   # an older layout, read in place
            from cache.legacy import load
            load(self, f)
            return
        self._require(S.SHARD_NAMES, S.SHARD_ROWS, S.SHARD_CRC, S.RUNS)
        self._load_shared()
        self.shard_names = [str(x) for x in strings(f[S.SHARD_NAMES])]
        self.shard_rows = f[S.SHARD_ROWS][()].astype(np.int64)
        self.shard_crc = f[S.SHARD_CRC][()].astype(np.uint32)
        self.runs = f[S.RUNS][()].astype(np.int64).reshape(-1, 3)
        self.row_map = L.expand_runs(self.runs)                               # [V] physical row per video
        S_ = len(self.shard_names)
        if len(self.shard_rows) != S_ or self.shard_crc.shape != (S_, len(L.CRC_PARTS)):
            raise CacheError(self.path, "damaged cache: the shard list is inconsistent")
        if len(self.row_map) and (self.row_map.min() < 0 or self.row_map.max() >= self.shard_rows.sum()):
            raise CacheError(self.path, "damaged cache: a video row points past the committed shard rows")
        self._f.close()
        self._f = None   # everything else comes from the shard files
        self._open_shards()

    def _require(self, *keys: str) -> None:
        missing = [k for k in (*keys, S.CLASS_NAMES, S.TEXT_EMB) if k not in self._f]
        if missing:
            raise CacheError(self.path, f"damaged cache: missing {', '.join(missing)}")

    def _load_shared(self) -> None:
        """Classes and failures: ordinary datasets in every layout."""
        f = self._f
        self.class_names: List[str] = list(strings(f[S.CLASS_NAMES]))
        self.text_emb = f[S.TEXT_EMB][()]
        fids = strings(f[S.FAIL_IDS]) if S.FAIL_IDS in f else []
        freasons = strings(f[S.FAIL_REASONS]) if S.FAIL_REASONS in f else []
        self.failures: List[Tuple[str, str]] = list(zip(fids, freasons))

    def _open_shards(self) -> None:
        """Frame rows are read at the file offsets of the shards' contiguous datasets (no virtual
        layer); per-video columns from the shards' videos files, in physical row order."""
        capacity, offsets = [], []
        files = [L.shard_file(self.path, L.frames_name(s)) for s in self.shard_names]
        for name, rows in zip(files, self.shard_rows):
            cap, off = L.frame_offsets(name, self.frames, self.dim)
            if cap < rows:
                raise CacheError(self.path, f"damaged cache: shard {name} holds {cap} rows, the manifest commits {rows}")
            capacity.append(cap)
            offsets.append(off)
        self.shard_capacity = np.array(capacity, np.int64)
        for kind in L.KINDS:
            shape, dtype = L.row_shape(kind, self.frames, self.dim)
            self._shards[kind] = L.ShardRows(files, self.shard_rows, shape, dtype, [o[kind] for o in offsets])
        parts = [read_videos(L.shard_file(self.path, L.videos_name(s)), int(rows), self._wanted)
                 for s, rows in zip(self.shard_names, self.shard_rows)]
        live = self.row_map
        if len(live) == int(self.shard_rows.sum()) and (live == np.arange(len(live))).all():
            live = slice(None)   # no replaced videos: logical rows are the physical rows
        self.set_columns({name: (np.concatenate([p[name] for p in parts]) if parts else
                                 np.array([], dtype=object if kind == "str" else kind))[live]
                          for name, (kind, _) in S.VIDEO_COLUMNS.items()
                          if self._wanted is None or name in self._wanted})

    def set_columns(self, columns: Dict[str, np.ndarray]) -> None:
        """The per-video columns (schema.VIDEO_COLUMNS, logical order), also as ids, labels, ...
        (None for a column this reader was not asked to read)."""
        self.columns = columns
        for name, attr in _ATTRS.items():
            setattr(self, attr, columns.get(name))
        if self.labels is not None:
            self.labels = self.labels.astype(np.int32)

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

    @property
    def has_index(self) -> bool:
        """Whether the cache stores its video index (schema 1 caches build one on request)."""
        return "vidx" in self._shards

    def video_index(self, progress: bool = True) -> L.RowView:
        """The L2-normalised mean-pooled video embedding of every video, [V, D] float16, memory-mapped.

        Returns a cache.layout.RowView: index it like an array (rows, slices, index arrays) or use
        its `parts` (a short list of (first row, memmap)) to scan it without loading it all. Schema 1
        caches build it once into the sidecar folder (one streamed pass) and reuse it after."""
        if self.has_index:
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


def open_cache(path: str, columns: Optional[Sequence[str]] = None) -> CacheReader:
    """Open a cache for reading (every per-video column, or the id and `columns`); raises CacheError
    with a one-line reason."""
    return CacheReader(path, columns)


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
