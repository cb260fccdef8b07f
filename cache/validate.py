"""Whole-file consistency checks of a cache; returns the list of problems found."""
from typing import List

import numpy as np

from cache import schema as S
from cache.errors import CacheError
from cache.reader import open_cache

_TIME_SLACK = 0.5  # s; container durations are rounded and the last frame may sit past them


def validate(path: str) -> List[str]:
    """Problems found in the cache at `path` (empty when whole and consistent). Raises CacheError."""
    try:
        return _validate(path)
    except (OSError, KeyError, ValueError, TypeError) as exc:  # HDF5 could not read a damaged part
        raise CacheError(path, f"damaged cache: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") \
            from None


def _validate(path: str) -> List[str]:
    problems: List[str] = []
    with open_cache(path) as r:
        V, N, D = r.num_videos, r.frames, r.dim
        shape = r._emb.shape
        if shape != (V, N, D):
            problems.append(f"{S.EMB} has shape {shape}, expected {(V, N, D)}")
        if r._emb.dtype != np.float16:
            problems.append(f"{S.EMB} is {r._emb.dtype}, expected float16")
        if r._t.shape != (V, N):
            problems.append(f"{S.TIMES} has shape {r._t.shape}, expected {(V, N)}")
        for name, arr in ((S.LABELS, r.labels), (S.SPLITS, r.splits), (S.CAPTIONS, r.captions),
                          (S.N_DISTINCT, r.n_distinct), (S.DURATION, r.duration), (S.FPS, r.fps)):
            if len(arr) != V:
                problems.append(f"{name} has {len(arr)} rows for {V} videos")
        if len(set(r.ids)) != V:
            problems.append("video ids are not unique")
        if any(not i for i in r.ids):
            problems.append("an empty video id")
        C = len(r.class_names)
        if len(set(r.class_names)) != C:
            problems.append("class names are not unique")
        if r.text_emb.shape != (C, D):
            problems.append(f"{S.TEXT_EMB} has shape {r.text_emb.shape}, expected {(C, D)}")
        if V and (r.labels.min() < -1 or r.labels.max() >= C):
            problems.append(f"labels outside [-1, {C})")
        fids = [i for i, _ in r.failures]
        if len(set(fids)) != len(fids):
            problems.append("failure ids are not unique")
        both = set(fids) & set(r.ids)
        if both:
            problems.append(f"{len(both)} ids are both cached and failed, e.g. {sorted(both)[0]!r}")
        if V and r._t.shape == (V, N):
            t = r.times()
            if not np.isfinite(t).all():
                problems.append("non-finite timestamps")
            elif N > 1 and (np.diff(t, axis=1) < 0).any():
                problems.append("timestamps decrease within a video")
            elif (t < 0).any() or (t > r.duration[:, None] + _TIME_SLACK).any():
                problems.append("timestamps outside the video's duration")
            if (r.n_distinct < 1).any() or (r.n_distinct > N).any():
                problems.append(f"n_distinct outside [1, {N}]")
            for start, block in r.iter_emb(1024):
                if not np.isfinite(block).all():
                    problems.append(f"non-finite embeddings in rows {start}..{start + len(block) - 1}")
                    break
    return problems
