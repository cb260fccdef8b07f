"""A trained head (or baseline) loaded for use: class probabilities of frames from any cache of its space."""
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from train.checkpoint import CHECKPOINT_NAME, TEXT_EMB_KEY, CheckpointError, load_checkpoint
from train.data import frame_subset
from clipvid.device import resolve_device
from train.linear import LinearMethod
from train.method import Method
from train.registry import make_method


def method_from_blob(blob: Dict[str, Any], path: str, device: str = "auto") -> Method:
    """The Method a loaded checkpoint describes; CheckpointError when its weights do not fit its config."""
    try:
        return make_method(blob["head"], blob["class_names"], blob["config"], blob["state_dict"],
                           resolve_device(device))
    except (KeyError, RuntimeError, TypeError) as exc:  # weights that do not fit the stored config
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(path, f"damaged checkpoint for head {blob['head']!r}: {first}")


def scores_any_text(method: Method) -> bool:
    """Whether the method classifies against whatever class texts it is given (all but the linear probe)."""
    return not isinstance(method, LinearMethod)


def _training_cache(blob: Dict[str, Any], run_dir: str) -> Optional[str]:
    """The cache the head was trained on, as its checkpoint or its metrics.json recorded it."""
    path = (blob.get("cache_info") or {}).get("cache")
    if not path:
        try:
            with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
                path = json.load(f).get("cache")
        except (OSError, ValueError, AttributeError):
            return None
    return str(path) if path else None


def stored_text(blob: Dict[str, Any], run_dir: str) -> Tuple[Optional[np.ndarray], str]:
    """(class text embeddings [C, D] float32 or None, where they came from) for a loaded checkpoint.

    The checkpoint's own copy first; else the training cache's, when it is still there and still
    the same embedding space and class list; else None (the caller may encode the names with CLIP).
    """
    names, dim = blob["class_names"], (blob.get("cache_info") or {}).get("dim")
    text = blob.get(TEXT_EMB_KEY)
    if text is not None and tuple(text.shape) == (len(names), dim or text.shape[1]):
        return text.numpy().astype(np.float32), "checkpoint"
    cache = _training_cache(blob, run_dir)
    if cache and os.path.isfile(cache):
        from clipvid.errors import CacheError
        from cache.reader import open_cache
        try:
            with open_cache(cache) as reader:
                if reader.fingerprint == blob["cache_fingerprint"] and list(reader.class_names) == list(names):
                    return np.asarray(reader.text_emb, np.float32), f"training cache {cache}"
        except CacheError:
            pass
    return None, "none"


@dataclass
class Head:
    """A method plus what it was trained with: class names, embedding space and class text embeddings."""
    method: Method
    run_dir: str
    class_names: List[str]
    fingerprint: str                      # the embedding space (CLIP weights, N, sampler) it was trained in
    cache_info: Dict[str, Any]            # clip_model, frames, dim, random_weights (+ weights_hash, cache)
    text_emb: Optional[np.ndarray]        # [C, D] float32 class text embeddings, None when unknown
    text_source: str                      # "checkpoint", "training cache PATH" or "none"
    open_set: Optional[Dict[str, List[str]]] = field(default=None)

    @property
    def name(self) -> str:
        return self.method.name

    @property
    def scores_any_text(self) -> bool:
        return scores_any_text(self.method)

    def frame_rows(self, n: int) -> np.ndarray:
        """The rows [K] of N cached frames the head was trained on (evenly spaced; all when it used all)."""
        k = self.method.config.get("frames")
        return frame_subset(n, int(k) if isinstance(k, int) and 0 < k < n else None)

    def _text(self, text: Optional[np.ndarray]) -> np.ndarray:
        """The class texts to score against: `text` when given (refused by a head that cannot), else its own."""
        if text is None:
            if self.text_emb is None and self.scores_any_text:
                raise ValueError(f"{self.run_dir}: the head's class text embeddings are unknown; pass text")
            return self.text_emb if self.text_emb is not None else np.zeros((len(self.class_names), 1))
        if not self.scores_any_text:
            raise ValueError(f"the {self.name} head scores only the classes it was trained on, not given names")
        return text

    def logits(self, frames: np.ndarray, text: Optional[np.ndarray] = None) -> np.ndarray:
        """Logits [B, C] of frames [B, K, D] against its classes, or against `text` [C', D] when given."""
        return self.method.logits(frames, self._text(text))

    def predict(self, frames: np.ndarray, text: Optional[np.ndarray] = None) -> np.ndarray:
        """Class probabilities [B, C] of frames [B, K, D]: the method's own probabilities of its logits."""
        return self.method.probabilities(self.logits(frames, text))

    def window_predict(self, frames: np.ndarray, starts: np.ndarray, width: int,
                       text: Optional[np.ndarray] = None) -> np.ndarray:
        """Probabilities [B, W, C] of the windows frames[:, s:s + width] (s in starts) of frames [B, N, D]:
        predict() of each window, computed from each row once (Method.window_logits)."""
        logits = self.method.window_logits(frames, starts, width, self._text(text))     # [B, W, C]
        return self.method.probabilities(logits.reshape(-1, logits.shape[2])).reshape(logits.shape)


def zero_shot_head(class_names: List[str], text_emb: np.ndarray, source: str) -> Head:
    """CLIP's own zero-shot for video as a Head: mean-pooled frames scored by cosine against `text_emb`."""
    from train.baselines import BaselineMethod
    return Head(BaselineMethod("meanpool", class_names, {}), "", list(class_names), "", {},
                np.asarray(text_emb, np.float32), source)


def load_head(run_dir: str, device: str = "auto") -> Head:
    """The head saved in RUN_DIR/head.pt (any folder holding one); raises CheckpointError (a ValueError)."""
    path = os.path.join(run_dir, CHECKPOINT_NAME)
    blob = load_checkpoint(path)
    method = method_from_blob(blob, path, device)
    text, source = stored_text(blob, run_dir)
    open_set = None
    try:
        with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
            open_set = json.load(f).get("open_set") or None
    except (OSError, ValueError, AttributeError):
        pass
    return Head(method, run_dir, list(blob["class_names"]), blob["cache_fingerprint"],
                dict(blob.get("cache_info") or {}), text, source, open_set)
