"""head.pt: a method's weights, config, class names and cache fingerprint; mismatches are refused."""
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from clipvid.atomic import atomic_path
from clipvid.errors import DataError

FORMAT = "clipvid-head"
VERSION = 1
CHECKPOINT_NAME = "head.pt"
TEXT_EMB_KEY = "class_text_emb"  # optional [C, D] float32 tensor, added after version 1 shipped


class CheckpointError(DataError, ValueError):
    """A checkpoint that cannot be used here, with a one-line reason naming the file (exit 3)."""


def save_checkpoint(path: str, head: str, config: Dict[str, Any], class_names: Sequence[str],
                    fingerprint: str, cache_info: Dict[str, Any],
                    state: Optional[Dict[str, torch.Tensor]], text_emb: Optional[np.ndarray] = None) -> None:
    """Write head.pt atomically; only tensors and plain values, so weights_only loading works.

    `text_emb` [C, D] (the class text embeddings the head was scored against) lets the head classify
    videos of caches that lack its classes; checkpoints written before it existed simply have none.
    """
    blob = {"format": FORMAT, "version": VERSION, "head": head, "config": dict(config),
            "class_names": [str(n) for n in class_names], "cache_fingerprint": fingerprint,
            "cache_info": dict(cache_info), "state_dict": state if state is not None else {}}
    if text_emb is not None:
        blob[TEXT_EMB_KEY] = torch.from_numpy(np.asarray(text_emb, np.float32).copy())
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load_checkpoint(path: str) -> Dict[str, Any]:
    """Read and sanity-check head.pt; raises CheckpointError with a one-line reason."""
    if not os.path.exists(path):
        raise CheckpointError(path, "no such checkpoint (train it first with python -m train)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated, foreign or pickled files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(path, f"not a readable clipvid checkpoint (truncated or corrupted?): {first}")
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(path, "not a clipvid head checkpoint")
    if int(blob.get("version", 0)) > VERSION:
        raise CheckpointError(path, f"checkpoint version {blob.get('version')} is newer than this clipvid "
                                    f"understands ({VERSION}); upgrade clipvid")
    for key, kind in (("head", str), ("config", dict), ("class_names", list),
                      ("cache_fingerprint", str), ("state_dict", dict)):
        if not isinstance(blob.get(key), kind):
            raise CheckpointError(path, f"damaged checkpoint: {key!r} is missing or not a {kind.__name__}")
    return blob


def _first_difference(ours: List[str], theirs: List[str]) -> str:
    if len(ours) != len(theirs):
        extra = sorted(set(ours) ^ set(theirs))[:3]
        return (f"the checkpoint has {len(ours)} classes, the cache {len(theirs)}"
                + (f" (e.g. {', '.join(map(repr, extra))})" if extra else ""))
    i = next(i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b)
    return f"class {i} is {ours[i]!r} in the checkpoint but {theirs[i]!r} in the cache"


def check_compatible(blob: Dict[str, Any], path: str, fingerprint: str, class_names: Sequence[str],
                     cache_path: str = "the cache") -> None:
    """Refuse a checkpoint made for another embedding space or another class list."""
    if blob["cache_fingerprint"] != fingerprint:
        info = blob.get("cache_info", {})
        made = f" (CLIP model {info.get('clip_model')!r}, {info.get('frames')} frames)" if info else ""
        raise CheckpointError(path, f"made for another cache: fingerprint {blob['cache_fingerprint']}{made}, "
                                    f"but {cache_path} has fingerprint {fingerprint}")
    ours, theirs = list(blob["class_names"]), [str(n) for n in class_names]
    if ours != theirs:
        raise CheckpointError(path, f"made for another class list than {cache_path}: "
                                    f"{_first_difference(ours, theirs)}")
