"""The candidate classes: a head's own (text from its checkpoint, training cache or CLIP) or names given now."""
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from clipvid.errors import UsageError
from clipvid.names import distinct_names


@dataclass
class Candidates:
    names: List[str]
    text: Optional[np.ndarray]    # [C, D] float32; None for a linear probe (it has its own weights)
    source: str                   # where the text embeddings came from
    mode: str                     # "head", "open-vocabulary" or "zero-shot"


def parse_labels(text: Optional[str], path: Optional[str]) -> Optional[List[str]]:
    """Class names from --labels (comma-separated) or --labels-file (one per line, # comments); None if neither."""
    if text is None and path is None:
        return None
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                raw = [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read the labels file ({getattr(exc, 'strerror', None) or exc})")
        where = path
    else:
        raw, where = [p.strip() for p in text.split(",") if p.strip()], "--labels"
    names = distinct_names(raw)
    if len(names) < 2:
        raise UsageError(f"{where}: give at least 2 distinct class names (got {len(names)})")
    return names


def encode_names(reader, names: List[str], device: str) -> np.ndarray:
    """Text embeddings [C, D] float32 of class names, as the cache `reader` embedded its own classes: its
    backbone's text encoder and tokenizer, its prompt templates."""
    from extract.clip_model import class_text_embeddings, load_clip
    from extract.prompts import TEMPLATES
    from extract.sources import prompt_name
    from clipvid.device import resolve_device
    clip_model, weights_hash = reader.clip_model, str(reader.settings.get("weights_hash", ""))
    clip_ = load_clip(clip_model, resolve_device(device, "embed"))   # WeightsUnavailable: exit 3, naming what is missing
    if weights_hash and clip_.weights_hash != weights_hash:
        # Text from other weights lives in another embedding space: every score would be noise.
        raise UsageError(f"CLIP model {clip_model!r} here has weights {clip_.weights_hash[:12]}, but the videos "
                         f"were embedded with weights {weights_hash[:12]}")
    templates = reader.prompt_templates or TEMPLATES
    return class_text_embeddings(clip_, [prompt_name(n) for n in names], templates).astype(np.float32)
