"""Read a cache into numpy; every problem becomes a one-line CacheError naming the file."""
import json
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import h5py
import numpy as np

from cache import schema as S
from cache.errors import CacheError


def _strings(ds) -> np.ndarray:
    return np.array(ds.asstr()[()], dtype=object) if len(ds) else np.array([], dtype=object)


class CacheReader:
    """A consistent, read-only snapshot of one cache file (the writer replaces files atomically)."""

    def __init__(self, path: str):
        self.path = path
        if not os.path.exists(path):
            raise CacheError(path, "no such cache file")
        if os.path.isdir(path):
            raise CacheError(path, "is a directory, not a cache file")
        try:
            self._f = h5py.File(path, "r")
        except OSError as exc:
            raise CacheError(path, f"not a readable HDF5 file (truncated or corrupted?): {str(exc).splitlines()[0]}")
        try:
            self._load_meta()
        except CacheError:
            self._f.close()
            raise
        except (KeyError, OSError, ValueError, TypeError) as exc:
            self._f.close()
            raise CacheError(path, f"damaged cache: {exc}")

    def _load_meta(self) -> None:
        f, a = self._f, self._f.attrs
        version = a.get("schema_version")
        if version is None:
            raise CacheError(self.path, "not a clipvid cache (no schema_version attribute)")
        if int(version) > S.SCHEMA_VERSION:
            raise CacheError(self.path, f"schema version {int(version)} is newer than this clipvid understands "
                                        f"({S.SCHEMA_VERSION}); upgrade clipvid")
        missing = [k for k in (S.EMB, S.TIMES, S.IDS, S.LABELS, S.CLASS_NAMES, S.TEXT_EMB) if k not in f]
        if missing:
            raise CacheError(self.path, f"damaged cache: missing {', '.join(missing)}")
        self.settings: Dict[str, Any] = {k: (a[k].item() if hasattr(a[k], "item") else a[k])
                                         for k in S.ATTR_KEYS if k in a}
        self.frames = int(a["frames"])
        self.dim = int(a["dim"])
        self.random_weights = bool(a.get("random_weights", False))
        self.ids = _strings(f[S.IDS])
        self.labels = f[S.LABELS][()].astype(np.int32)
        n = len(self.ids)
        self.splits = _strings(f[S.SPLITS]) if S.SPLITS in f else np.array([""] * n, dtype=object)
        self.captions = _strings(f[S.CAPTIONS]) if S.CAPTIONS in f else np.array([""] * n, dtype=object)
        self.n_distinct = f[S.N_DISTINCT][()] if S.N_DISTINCT in f else np.zeros(n, np.int32)
        self.duration = f[S.DURATION][()] if S.DURATION in f else np.zeros(n, np.float32)
        self.fps = f[S.FPS][()] if S.FPS in f else np.zeros(n, np.float32)
        self.class_names: List[str] = list(_strings(f[S.CLASS_NAMES]))
        self.text_emb = f[S.TEXT_EMB][()]
        fids = _strings(f[S.FAIL_IDS]) if S.FAIL_IDS in f else []
        freasons = _strings(f[S.FAIL_REASONS]) if S.FAIL_REASONS in f else []
        self.failures: List[Tuple[str, str]] = list(zip(fids, freasons))
        self._emb = f[S.EMB]
        self._t = f[S.TIMES]
        if self._emb.shape[0] != n:
            raise CacheError(self.path, f"damaged cache: {self._emb.shape[0]} embedding rows for {n} ids")

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
        return int(np.prod(self._emb.shape)) * 2

    # -- arrays -----------------------------------------------------------------
    def emb(self, index: Optional[Sequence[int]] = None) -> np.ndarray:
        """Frame embeddings [V, N, D] float16, all rows or the rows in `index` (in that order)."""
        if index is None:
            return self._emb[()]
        index = np.asarray(index, dtype=np.int64)
        if not len(index):
            return np.empty((0,) + self._emb.shape[1:], np.float16)
        uniq, inverse = np.unique(index, return_inverse=True)  # h5py wants increasing indices
        if uniq[-1] - uniq[0] + 1 == len(uniq):  # one contiguous run: a slice, not a point-by-point selection
            block = self._emb[int(uniq[0]):int(uniq[-1]) + 1]
            return block if np.array_equal(index, uniq) else block[inverse]
        return self._emb[uniq][inverse]

    def times(self) -> np.ndarray:
        """Row timestamps [V, N] float32, seconds."""
        return self._t[()]

    def iter_emb(self, batch: int = 256) -> Iterator[Tuple[int, np.ndarray]]:
        """Yield (start row, [b, N, D] float16) blocks, for caches larger than memory."""
        for start in range(0, self.num_videos, batch):
            yield start, self._emb[start:start + batch]

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "CacheReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_cache(path: str) -> CacheReader:
    """Open a cache for reading; raises CacheError with a one-line reason."""
    return CacheReader(path)


def read_settings(path: str) -> Dict[str, Any]:
    """Only the root attributes (cheap); raises CacheError."""
    with open_cache(path) as r:
        return dict(r.settings)
