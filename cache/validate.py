"""Whole-cache consistency checks (manifest, virtual mapping, every shard byte, the video index)."""
import os
from typing import List

import h5py
import numpy as np

from cache import layout as L
from cache import schema as S
from clipvid.errors import CacheError
from cache.manifest import columns_crc, mapped_folder, read_videos
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
    """Every committed frame byte, and every videos file, matches the checksum the writer recorded."""
    problems: List[str] = []
    for name, rows, want in zip(r.shard_names, r.shard_rows, r.shard_crc[:, -1]):
        f = L.shard_file(r.path, L.videos_name(name))
        # of its committed values; a cache written before 2026-12 recorded the crc of the whole file
        with h5py.File(f, "r") as h:
            stored = set(h)   # a column added after the file was written is not in its checksum
        values = read_videos(f, int(rows), stored)
        if columns_crc(values, int(rows)) != int(want) and file_crc(f, os.path.getsize(f)) != int(want):
            problems.append(f"{f}: checksum does not match (damaged shard)")
    for kind in L.KINDS:
        rows = r._shards[kind]
        for name, off, count, want in zip(rows.files, rows.offsets, r.shard_rows, r.shard_crc[:, L.KINDS.index(kind)]):
            if file_crc(name, int(count) * rows.row_nbytes, off) != int(want):
                problems.append(f"{name}: checksum of the {count} committed rows of {kind} does not match (damaged shard)")
    return problems


def _mapping(r: CacheReader) -> List[str]:
    """Each virtual dataset maps exactly the committed shard rows the runs table names, in order."""
    folder = os.path.basename(L.sidecar(r.path))
    starts = np.concatenate(([0], np.cumsum(r.shard_rows)))
    want = set()
    for logical, physical, count in r.runs.tolist():
        s = int(np.searchsorted(starts, physical, side="right")) - 1
        if physical + count > starts[s + 1]:
            return [f"{S.RUNS}: rows {physical}..{physical + count - 1} run past shard {r.shard_names[s]}"]
        want.add((logical, count, r.shard_names[s], physical - int(starts[s])))
    named = mapped_folder(r.path)
    if named not in (None, folder):
        return [f"the virtual datasets name the folder {named}/, not {folder}/ (the cache was renamed: "
                f"`python -m cache migrate {r.path}` maps it again)"]
    problems: List[str] = []
    keys = [(S.EMB, "frames", "emb"), (S.TIMES, "frames", "t")] + [(f"videos/{c}", "videos", c) for c in S.VIDEO_COLUMNS]
    with h5py.File(r.path, "r") as f:
        for key, kind, dataset in keys:
            if key not in f or f[key].shape[:1] != (r.num_videos,):
                problems.append(f"{key} is missing or has the wrong number of rows")
                continue
            got = set()
            for m in (f[key].virtual_sources() if f[key].is_virtual else []):
                (lo, *_), (hi, *_) = m.vspace.get_select_bounds()
                (slo, *_), (shi, *_) = m.src_space.get_select_bounds()
                shard = m.file_name.rsplit("/", 1)[-1].split(".")[0]
                if m.file_name != f"{folder}/{shard}.{kind}.h5" or m.dset_name != dataset or shi - slo != hi - lo:
                    problems.append(f"{key}: a mapping names {m.file_name}:{m.dset_name}, not a shard's {dataset}")
                got.add((lo, hi - lo + 1, shard, slo))
            if got != want:
                problems.append(f"{key}: its virtual mapping does not match the committed shard rows")
    return problems


def _validate(path: str) -> List[str]:
    with open_cache(path) as r:
        V, N = r.num_videos, r.frames
        problems = _metadata(r)
        if r.legacy:
            from cache.legacy import problems as legacy_problems
            problems += legacy_problems(r)
        else:
            problems += _shards(r) + _mapping(r)
        if problems and not r.has_index:
            return problems
        index = r.video_index(progress=False) if r.has_index else None
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
