"""CLIP's text encoder for a cache: the cache's own model unless told otherwise, weights hash checked."""
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from cache.reader import CacheReader

if TYPE_CHECKING:  # extract (and torch) load only when a text really has to be encoded
    from extract.clip_model import LoadedClip


class ClipMismatch(ValueError):
    """The CLIP weights at hand are not the ones the cache was embedded with (or cannot be loaded)."""


def load_text_encoder(reader: CacheReader, spec: Optional[str] = None, device: str = "auto") -> "LoadedClip":
    """extract.clip_model.LoadedClip for `spec` (default: the cache's model); raises ClipMismatch."""
    from extract.clip_model import load_clip
    from extract.weightbase import WeightsUnavailable
    from clipvid.device import resolve_device
    spec = spec or reader.clip_model
    try:
        clip_ = load_clip(spec, resolve_device(device, "embed"))
    except WeightsUnavailable as exc:
        raise ClipMismatch(str(exc))
    want = str(reader.settings.get("weights_hash", ""))
    if clip_.weights_hash != want:
        # Text from other weights lives in another embedding space: every score would be noise.
        raise ClipMismatch(f"CLIP model {spec!r} has weights {clip_.weights_hash[:12]}, but the cache was made "
                           f"with {reader.clip_model!r} (weights {want[:12]}); pass the cache's --clip-model")
    return clip_


def encode(clip_: "LoadedClip", texts: Sequence[str], batch: int = 256, progress: bool = False) -> np.ndarray:
    """Sentences -> unit text embeddings [T, D] float32, in batches (with a progress bar if asked)."""
    from extract.clip_model import encode_texts
    from clipvid.progress import progress as progress_display
    starts = range(0, len(texts), batch)
    parts = [encode_texts(clip_, list(texts[s:s + batch]))
             for s in progress_display(starts, desc="encoding captions", unit="batch", quiet=not progress)]
    return np.concatenate(parts) if parts else np.zeros((0, clip_.dim), np.float32)
