"""A trained head's saved video embeddings for search: memory-mapped when they match the cache, else re-embedded."""
import os
from typing import Callable, Tuple

import numpy as np
from clipvid.progress import progress as progress_display

from cache.reader import CacheReader
from evaluate import metrics as M
from train.outputs import VIDEO_EMB_NAME, group_of, ids_digest, read_video_emb_meta, write_video_emb

EMBED_BATCH = 256


def _matching_rows(run_dir: str, reader: CacheReader) -> int:
    """How many leading cache rows the run's saved embeddings hold (0 when they are for another cache)."""
    meta = read_video_emb_meta(run_dir)
    if meta is None or meta.get("cache_fingerprint") != reader.fingerprint:
        return 0
    rows = meta["rows"]
    if not 0 < rows <= reader.num_videos or meta.get("ids_sha256") != ids_digest(reader.ids[:rows]):
        return 0
    return rows


def _embed(method, reader: CacheReader, start: int, progress: bool) -> np.ndarray:
    """Unit head embeddings [V - start, D] of the rows from `start` on, read in blocks."""
    out = np.zeros((reader.num_videos - start, reader.dim), np.float32)
    steps = range(start, reader.num_videos, EMBED_BATCH)
    for s in progress_display(steps, desc=f"embedding with {method.name}", unit="block", quiet=not progress):
        rows = np.arange(s, min(s + EMBED_BATCH, reader.num_videos))
        out[s - start:s - start + len(rows)] = M.l2_normalise(method.video_embeddings(reader.emb(rows).astype(np.float32)))
    return out


def run_video_embeddings(run_dir: str, reader: CacheReader, device: str = "auto", progress: bool = False,
                         note: Callable[[str], None] = lambda s: None) -> Tuple[np.ndarray, str]:
    """([V, D] video embeddings of the head in run_dir, in cache order; a description).

    The saved video_emb.npy is memory-mapped when its fingerprint and ids match the cache; a cache that
    grew since training gets only its new rows embedded; anything else is re-embedded with the head.
    Either way the result is saved back, so the next search maps it. Raises CheckpointError when the
    head itself was made for another cache.
    """
    from train.api import load_method
    path = os.path.join(run_dir, VIDEO_EMB_NAME)
    have = _matching_rows(run_dir, reader)
    if have:
        try:
            saved = np.load(path, mmap_mode="r")
        except (OSError, ValueError):
            saved, have = None, 0
        if saved is not None and (saved.ndim != 2 or saved.shape != (have, reader.dim)):
            have = 0
    if have == reader.num_videos:
        return saved, f"the {os.path.basename(group_of(run_dir))} head's saved video embeddings"
    method = load_method(run_dir, reader=reader, device=device)   # refuses a head made for another cache
    if have:
        note(f"{path}: holds {have} of the cache's {reader.num_videos} videos; embedding the new ones")
        emb = np.concatenate([np.asarray(saved, np.float32), _embed(method, reader, have, progress)])
    else:
        note(f"{path}: missing or made for other cache contents; embedding every video with the head")
        emb = _embed(method, reader, 0, progress)
    try:
        write_video_emb(run_dir, emb, reader.ids, reader.fingerprint)
    except OSError as exc:  # a read-only run folder: search still works, the next one re-embeds
        note(f"{path}: cannot save ({exc.strerror or exc}); searching without saving")
    return emb, f"the {method.name} head's video embeddings"
