"""Whole-cache consistency checks (manifest, every shard byte, the video index); returns the problems."""
from typing import List

import numpy as np

from cache import layout as L
from cache import schema as S
from clipvid.errors import CacheError
from cache.pooling import mean_pool
from cache.reader import CacheReader, open_cache
from cache.shards import file_crc

_TIME_SLACK = 0.5  # s; container durations are rounded and the last frame may sit past them
_BLOCK = 1024      # videos per streamed read


def validate(path: str) -> List[str]:
    """Problems found in the cache at `path` (empty when whole and consistent). Raises CacheError."""
    try:
        return _validate(path)
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:  # a damaged part
        raise CacheError(path, f"damaged cache: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") \
            from None


def _metadata(r: CacheReader) -> List[str]:
    problems: List[str] = []
    V, N, D = r.num_videos, r.frames, r.dim
    for name, arr in ((S.LABELS, r.labels), (S.SPLITS, r.splits), (S.CAPTIONS, r.captions), (S.CONTENT, r.content), (S.DECODER, r.decoder),
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
    if V and ((r.n_distinct < 1).any() or (r.n_distinct > N).any()):
        problems.append(f"n_distinct outside [1, {N}]")
    return problems


def _shards(r: CacheReader) -> List[str]:
    """Schema 2: rows map one-to-one into committed shard rows, and every committed byte matches
    the checksum the writer recorded."""
    problems: List[str] = []
    if len(np.unique(r.row_map)) != len(r.row_map):
        problems.append(f"{S.ROW} points two videos at the same shard row")
    for name, rows, nstr, crcs in zip(r.shard_names, r.shard_rows, r.shard_str_bytes, r.shard_crc):
        sizes = [int(rows) * L.row_bytes(kind, r.frames, r.dim) for kind in L.KINDS] + [int(nstr)]
        for kind, size, want in zip(L.FILES, sizes, crcs):
            f = L.shard_file(r.path, name, kind)
            if file_crc(f, size) != int(want):
                problems.append(f"{f}: checksum of its {rows} committed rows does not match (damaged shard)")
    return problems


def _validate(path: str) -> List[str]:
    with open_cache(path) as r:
        V, N = r.num_videos, r.frames
        problems = _metadata(r)
        if r.schema_version < 2:
            if r._emb.shape != (V, N, r.dim) or r._emb.dtype != np.float16:
                problems.append(f"{S.EMB} is {r._emb.dtype} {r._emb.shape}, expected float16 {(V, N, r.dim)}")
            if r._t.shape != (V, N):
                problems.append(f"{S.TIMES} has shape {r._t.shape}, expected {(V, N)}")
            if problems:
                return problems
        else:
            problems += _shards(r)
        index = r.video_index(progress=False) if r.schema_version >= 2 else None
        for start in range(0, V, _BLOCK):
            rows = np.arange(start, min(start + _BLOCK, V))
            block, t = r.emb(rows), r.times(rows)                      # [b, N, D], [b, N]
            where = f"rows {start}..{rows[-1]}"
            if not np.isfinite(block).all():
                problems.append(f"non-finite embeddings in {where}")
            if not np.isfinite(t).all():
                problems.append(f"non-finite timestamps in {where}")
            elif N > 1 and (np.diff(t, axis=1) < 0).any():
                problems.append(f"timestamps decrease within a video in {where}")
            elif (t < 0).any() or (t > r.duration[rows, None] + _TIME_SLACK).any():
                problems.append(f"timestamps outside the video's duration in {where}")
            if index is not None and np.isfinite(block).all():
                gap = np.abs(index[rows].astype(np.float32) - mean_pool(block)).max()
                if gap > 2e-3:
                    problems.append(f"the video index disagrees with the frames in {where} (by {gap:.3g})")
            if len(problems) > 20:
                break
    return problems
