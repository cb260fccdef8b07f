"""The Method interface shared by baselines, the linear probe and trained heads, plus its batched maths."""
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from cache.pooling import l2_normalise

LOGIT_SCALE = 100.0  # CLIP's trained temperature; used by methods that learn none
BATCH = 256          # videos per forward pass: [256, 100, 512] float32 is 50 MB


def as_float32(x: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
    """float32 view or copy; float16 goes through torch, whose vectorised conversion is many times numpy's.

    With `out` (float32, at least len(x) rows of x's shape) the result is written into out[:len(x)] and
    returned: a scan that reuses one buffer skips the page faults of a fresh 100 MB array per block.
    """
    if x.dtype == np.float16:
        import torch
        src = torch.from_numpy(np.ascontiguousarray(x))
        if out is not None and out.dtype == np.float32 and out.shape[1:] == x.shape[1:] and len(out) >= len(x):
            torch.from_numpy(out[:len(x)]).copy_(src)
            return out[:len(x)]
        return src.float().numpy()
    return np.asarray(x, dtype=np.float32)


def scaled_cosine(video: np.ndarray, text: np.ndarray, scale: float = LOGIT_SCALE) -> np.ndarray:
    """CLIP logits: scale * cos(video [V, D], text [C, D]) -> [V, C] float32."""
    return (scale * l2_normalise(video) @ l2_normalise(text).T
            ).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax [V, C], stable for large logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Method:
    """A way to turn frame embeddings [V, K, D] into a video embedding and class logits.

    Subclasses implement `_embed` (and `_logits` when theirs is not the scaled cosine of `_embed`)
    on one float32 batch; this class does the batching so 1e5 videos never sit in memory as float32.
    """

    scores_any_text = True  # False for a method with no logit for a class it never trained on (open set: n/a)
    # True when the embedding is the raw time mean of the frames and the logits a function of it
    # (`_pooled_logits`): a scan that already holds those means then scores it without the frames.
    pooled_only = False

    def __init__(self, name: str, class_names: List[str], config: Dict[str, Any]):
        self.name = name
        self.class_names = list(class_names)
        self.config = dict(config)

    # -- to implement -------------------------------------------------------------------
    def _embed(self, x: np.ndarray) -> np.ndarray:  # x: [B, K, D] float32 -> [B, D]
        raise NotImplementedError

    def _logits(self, x: np.ndarray, text: np.ndarray) -> np.ndarray:  # -> [B, C]
        return scaled_cosine(self._embed(x), text)

    # -- public ---------------------------------------------------------------------------
    def video_embeddings(self, emb: np.ndarray) -> np.ndarray:
        """Video embeddings [V, D] float32 in CLIP's joint space, from frames [V, K, D]."""
        return self._batched(emb, lambda x: self._embed(x), emb.shape[-1])

    def logits(self, emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        """Logits [V, C] float32 of frames [V, K, D] against class text embeddings [C, D]."""
        text = np.asarray(text_emb, dtype=np.float32)
        return self._batched(emb, lambda x: self._logits(x, text), self._num_outputs(text))

    def embed_and_score(self, x: np.ndarray, picks: Dict[str, Tuple[np.ndarray, np.ndarray]]
                        ) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        """One block's video embeddings [B, D] and, per named part, the logits [len(rows), C] of its rows
        `rows` (indices into the block) against its text [C, D]: what a shared scan asks of every method."""
        return self.video_embeddings(x), {n: self.logits(x[rows], text) for n, (rows, text) in picks.items()}

    def score_pooled(self, pooled: np.ndarray, picks: Dict[str, Tuple[np.ndarray, np.ndarray]]
                     ) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        """embed_and_score of a pooled_only method from the time means [B, D] of the block's frames."""
        return pooled, {n: self._pooled_logits(pooled[rows], text) for n, (rows, text) in picks.items()}

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Per-class confidence [V, C] for a score column; the softmax unless a method knows better."""
        return softmax(logits)

    def _num_outputs(self, text: np.ndarray) -> int:
        return len(text)

    def _batched(self, emb: np.ndarray, fn, width: int) -> np.ndarray:
        if emb.ndim != 3:
            raise ValueError(f"frame embeddings must be [videos, frames, dim], got shape {emb.shape}")
        out = np.empty((len(emb), width), np.float32)
        for start in range(0, len(emb), BATCH):
            x = as_float32(emb[start:start + BATCH])                    # [B, K, D]
            out[start:start + len(x)] = fn(x)
        return out
