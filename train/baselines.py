"""Order-blind zero-shot baselines: mid-frame, mean-pool, max-pool and per-frame majority vote."""
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from cache.pooling import l2_normalise, mean_pool
from train.method import Method, window_means, window_sums

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


def frame_votes(x: np.ndarray, text: np.ndarray) -> np.ndarray:
    """Per frame [B, K, 2C]: a one-hot vote for its nearest text, then its cosine to every text."""
    b, k, d = x.shape
    # One 2-D product: numpy's stacked 3-D matmul misses BLAS and ran ~10x slower.
    cos = (l2_normalise(x).reshape(b * k, d) @ l2_normalise(text).T).reshape(b, k, -1)  # [B, K, C]
    votes = np.zeros_like(cos)
    np.put_along_axis(votes, cos.argmax(axis=2)[..., None], 1.0, axis=2)  # [B, K, C]
    return np.concatenate([votes, cos], axis=2)


def vote_summary(summed: np.ndarray, k: int) -> np.ndarray:
    """frame_votes summed over k frames [..., 2C] -> vote counts and mean cosines [..., 2C]."""
    c = summed.shape[-1] // 2
    return np.concatenate([summed[..., :c], summed[..., c:] / np.float32(k)], axis=-1)


def vote_score(summary: np.ndarray) -> np.ndarray:
    """Logits [B, C] from vote_summary [B, 2C]: the counts, ties going to the higher mean cosine."""
    c = summary.shape[1] // 2
    return summary[:, :c] + TIE_BREAK * summary[:, c:]


def vote_logits(x: np.ndarray, text: np.ndarray) -> np.ndarray:
    """Votes per class [B, C]: each frame votes for its nearest text; ties go to the higher mean cosine."""
    return vote_score(vote_summary(frame_votes(x, text).sum(axis=1), x.shape[1]))


POOLS: Dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "midframe": midframe, "meanpool": mean_over_time, "maxpool": maxpool, "vote": vote_embedding,
}


class BaselineMethod(Method):
    """A training-free method: pool the frames, then the scaled cosine (or the vote) against text."""

    order_blind = True

    def __init__(self, name: str, class_names: List[str], config: Dict[str, Any]):
        if name not in POOLS:
            raise ValueError(f"unknown baseline {name!r}")
        super().__init__(name, class_names, config)
        self._pool_fn = POOLS[name]
        self.pooled_only = name == "meanpool"

    def _embed(self, x: np.ndarray) -> np.ndarray:
        return self._pool_fn(x)

    def embed_and_score(self, x: np.ndarray, picks: Dict[str, Tuple[np.ndarray, np.ndarray]]
                        ) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        if self.name == "vote":
            return super().embed_and_score(x, picks)
        video = self.video_embeddings(x)  # scores are `_score` of the (row-wise) embedding: pool once
        return video, {n: self._score(video[rows], text) for n, (rows, text) in picks.items()}

    def _pool(self, x: np.ndarray, text: np.ndarray) -> np.ndarray:
        if self.name != "vote":
            return super()._pool(x, text)
        return vote_summary(frame_votes(x, text).sum(axis=1), x.shape[1])  # [B, 2C]

    def _pool_windows(self, x: np.ndarray, starts: np.ndarray, width: int, text: np.ndarray) -> np.ndarray:
        if self.name == "meanpool":
            return window_means(x, starts, width)                             # [B, W, D]
        if self.name == "midframe":
            return x[:, np.asarray(starts) + width // 2]                     # the middle row of each window
        if self.name == "vote":
            return vote_summary(window_sums(frame_votes(x, text), starts, width), width)  # [B, W, 2C]
        return super()._pool_windows(x, starts, width, text)

    def _score(self, pooled: np.ndarray, text: np.ndarray) -> np.ndarray:
        if self.name == "vote":
            return vote_score(pooled)
        return super()._score(pooled, text)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        if self.name != "vote":
            return super().probabilities(logits)
        # Vote logits are counts plus a tie-break below 0.5, so rounding recovers the counts.
        counts = np.rint(logits)
        return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
