"""Order-blind zero-shot baselines: mid-frame, mean-pool, max-pool and per-frame majority vote."""
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from cache.pooling import l2_normalise, mean_pool, unit_mean
from train.method import Method, scaled_cosine

# Below 0.5, so adding (tie-break weight x mean cosine in [-1, 1]) never changes which count is larger.
TIE_BREAK = 0.49


def midframe(x: np.ndarray) -> np.ndarray:
    """The middle row [B, D] of frames [B, K, D] (the later one when K is even)."""
    return x[:, x.shape[1] // 2]


def mean_over_time(x: np.ndarray) -> np.ndarray:
    """Raw mean over time [B, D] (the meanpool baseline; cache.pooling.mean_pool averages unit frames)."""
    return x.mean(axis=1)


def maxpool(x: np.ndarray) -> np.ndarray:
    """Element-wise max over time [B, D]."""
    return x.max(axis=1)


def vote_embedding(x: np.ndarray) -> np.ndarray:
    """Unit mean of the unit frames [B, D] (cache.pooling.mean_pool): what the per-frame votes average over."""
    return mean_pool(x)


def vote_logits(x: np.ndarray, text: np.ndarray) -> np.ndarray:
    """Votes per class [B, C]: each frame votes for its nearest text; ties go to the higher mean cosine."""
    return _votes(l2_normalise(x), text)


def _votes(unit: np.ndarray, text: np.ndarray) -> np.ndarray:
    """vote_logits from unit frames [B, K, D]."""
    b, k, d = unit.shape
    # One 2-D product: numpy's stacked 3-D matmul misses BLAS and ran ~10x slower.
    cos = (unit.reshape(b * k, d) @ l2_normalise(text).T).reshape(b, k, -1)  # [B, K, C]
    winners = cos.argmax(axis=2)                                   # [B, K]
    c = text.shape[0]
    flat = (np.arange(b)[:, None] * c + winners).ravel()           # one bin per (video, class)
    counts = np.bincount(flat, minlength=b * c).reshape(b, c).astype(np.float32)  # [B, C]
    return counts + TIE_BREAK * cos.mean(axis=1)


POOLS: Dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "midframe": midframe, "meanpool": mean_over_time, "maxpool": maxpool, "vote": vote_embedding,
}


class BaselineMethod(Method):
    """A training-free method: pool the frames, then the scaled cosine (or the vote) against text."""

    def __init__(self, name: str, class_names: List[str], config: Dict[str, Any]):
        if name not in POOLS:
            raise ValueError(f"unknown baseline {name!r}")
        super().__init__(name, class_names, config)
        self._pool = POOLS[name]
        self.pooled_only = name == "meanpool"
        self._unit: Optional[np.ndarray] = None   # the vote's unit frames, one buffer reused block after block

    def _embed(self, x: np.ndarray) -> np.ndarray:
        return self._pool(x)

    def _logits(self, x: np.ndarray, text: np.ndarray) -> np.ndarray:
        if self.name == "vote":
            return vote_logits(x, text)
        return super()._logits(x, text)

    def _pooled_logits(self, pooled: np.ndarray, text: np.ndarray) -> np.ndarray:
        return scaled_cosine(pooled, text)  # meanpool only (pooled_only)

    def embed_and_score(self, x: np.ndarray, picks: Dict[str, Tuple[np.ndarray, np.ndarray]]
                        ) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        if self.name != "vote":  # scores are the scaled cosine of the (row-wise) embedding: pool once
            video = self.video_embeddings(x)
            return video, {n: scaled_cosine(video[rows], text) for n, (rows, text) in picks.items()}
        x = np.asarray(x, np.float32)
        if self._unit is None or len(self._unit) < len(x) or self._unit.shape[1:] != x.shape[1:]:
            self._unit = np.empty(x.shape, np.float32)
        unit = l2_normalise(x, out=self._unit[:len(x)])  # [B, K, D] once, for the embedding and the votes
        return unit_mean(unit), {n: _votes(unit[rows], text) for n, (rows, text) in picks.items()}

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        if self.name != "vote":
            return super().probabilities(logits)
        # Vote logits are counts plus a tie-break below 0.5, so rounding recovers the counts.
        counts = np.rint(logits)
        return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
