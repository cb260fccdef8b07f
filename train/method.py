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


def window_sums(x: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """Sums [B, W, F] of rows s..s+width-1 of x [B, N, F] for each start s.

    Rows are first summed in chunks of g, the largest step every window edge is a multiple of (10 rows
    for the default N/5 window every N/10), each row once; one product with a 0/1 matrix then adds a
    window's chunks.
    """
    b, n, f = x.shape
    starts = np.asarray(starts, np.int64)
    g = int(np.gcd.reduce(np.concatenate([starts, [width, n]])))
    chunks = x.reshape(b, n // g, g, f).sum(axis=2) if g > 1 else x      # [B, N/g, F]
    cover = np.zeros((len(starts), n // g), x.dtype)                     # [W, N/g]
    cover[np.arange(len(starts))[:, None], (starts // g)[:, None] + np.arange(width // g)] = 1
    return np.matmul(cover, chunks)                                       # [B, W, F]


def window_means(x: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """Means [B, W, F] of the windows of x [B, N, F] (the windowed mean over time)."""
    return window_sums(x, starts, width) / np.float32(width)


def gather_windows(x: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """Windows [B * W, width, D] of x [B, N, D]: rows s..s+width-1 for each start s, video by video."""
    rows = np.asarray(starts)[:, None] + np.arange(width)[None, :]       # [W, width]
    return x[:, rows].reshape(len(x) * len(starts), width, x.shape[-1])


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax [V, C], stable for large logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Method:
    """A way to turn frame embeddings [V, K, D] into a video embedding and class logits.

    Subclasses implement `_embed` (and `_logits` when theirs is not the scaled cosine of `_embed`)
    on one float32 batch; this class does the batching so 1e5 videos never sit in memory as float32.

    An order-blind method (`order_blind = True`) scores in two steps, `_score(_pool(x, text), text)`:
    a summary of the frames that ignores their order, then its one scoring function. Windows of a
    video are then pooled together from each row read once (`_pool_windows`) and scored by that same
    `_score`; other methods score every window as a short video through `logits`.
    """

    scores_any_text = True  # False for a method with no logit for a class it never trained on (open set: n/a)
    order_blind = False     # True: logits depend on the frames only through `_pool` (see above)
    # True when `_pool` is the raw time mean of the frames (and the embedding too): a scan that already
    # holds those means scores the method with `_score` alone, without the frames.
    pooled_only = False

    def __init__(self, name: str, class_names: List[str], config: Dict[str, Any]):
        self.name = name
        self.class_names = list(class_names)
        self.config = dict(config)

    # -- to implement -------------------------------------------------------------------
    def _embed(self, x: np.ndarray) -> np.ndarray:  # x: [B, K, D] float32 -> [B, D]
        raise NotImplementedError

    def _logits(self, x: np.ndarray, text: np.ndarray) -> np.ndarray:  # -> [B, C]
        return self._score(self._pool(x, text), text)

    def _pool(self, x: np.ndarray, text: np.ndarray) -> np.ndarray:  # [B, K, D] -> [B, F] order-blind summary
        return self._embed(x)

    def _pool_windows(self, x: np.ndarray, starts: np.ndarray, width: int, text: np.ndarray) -> np.ndarray:
        """[B, W, F] summaries of the windows of x [B, N, D]; subclasses pool them without copying windows."""
        return self._pool(gather_windows(x, starts, width), text).reshape(len(x), len(starts), -1)

    def _score(self, pooled: np.ndarray, text: np.ndarray) -> np.ndarray:  # [B, F] -> logits [B, C]
        return scaled_cosine(pooled, text)

    # -- public ---------------------------------------------------------------------------
    def video_embeddings(self, emb: np.ndarray) -> np.ndarray:
        """Video embeddings [V, D] float32 in CLIP's joint space, from frames [V, K, D]."""
        return self._batched(emb, lambda x: self._embed(x), emb.shape[-1])

    def logits(self, emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        """Logits [V, C] float32 of frames [V, K, D] against class text embeddings [C, D]."""
        text = np.asarray(text_emb, dtype=np.float32)
        return self._batched(emb, lambda x: self._logits(x, text), self._num_outputs(text))

    def window_logits(self, emb: np.ndarray, starts: np.ndarray, width: int, text_emb: np.ndarray) -> np.ndarray:
        """Logits [V, W, C] of the windows emb[:, s:s + width] (s in starts) of frames [V, N, D]: what
        `logits` gives each window, with each row converted once and all windows of a batch in one call."""
        if emb.ndim != 3:
            raise ValueError(f"frame embeddings must be [videos, frames, dim], got shape {emb.shape}")
        text = np.asarray(text_emb, dtype=np.float32)
        starts = np.asarray(starts, np.int64)
        if width < 1 or not len(starts) or starts.min() < 0 or starts.max() + width > emb.shape[1]:
            raise ValueError(f"windows of {width} rows starting at rows {starts.min(initial=0)}-"
                             f"{starts.max(initial=0)} do not fit videos of {emb.shape[1]} frames")
        out = np.empty((len(emb), len(starts), self._num_outputs(text)), np.float32)
        per = max(1, BATCH * emb.shape[1] // (len(starts) * width))   # videos whose windows fill one batch
        for s in range(0, len(emb), per):
            x = as_float32(emb[s:s + per])                                # [b, N, D]
            if self.order_blind:
                pooled = self._pool_windows(x, starts, width, text)      # [b, W, F]
                logits = self._score(pooled.reshape(len(x) * len(starts), -1), text)
            else:
                logits = self._logits(gather_windows(x, starts, width), text)  # [b * W, C] in one forward
            out[s:s + len(x)] = logits.reshape(len(x), len(starts), -1)
        return out

    def embed_and_score(self, x: np.ndarray, picks: Dict[str, Tuple[np.ndarray, np.ndarray]]
                        ) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        """One block's video embeddings [B, D] and, per named part, the logits [len(rows), C] of its rows
        `rows` (indices into the block) against its text [C, D]: what a shared scan asks of every method."""
        return self.video_embeddings(x), {n: self.logits(x[rows], text) for n, (rows, text) in picks.items()}

    def score_pooled(self, pooled: np.ndarray, picks: Dict[str, Tuple[np.ndarray, np.ndarray]]
                     ) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        """embed_and_score of a pooled_only method from the time means [B, D] of the block's frames."""
        return pooled, {n: self._score(pooled[rows], text) for n, (rows, text) in picks.items()}

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
