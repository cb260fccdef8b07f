"""The plain CLIP video embedding: unit mean of unit frame embeddings (numpy, defined once here)."""
from typing import Optional

import numpy as np


def l2_normalise(x: np.ndarray, axis: int = -1, out: Optional[np.ndarray] = None) -> np.ndarray:
    """Unit rows in float32 (zero rows stay zero); with `out` (float32, x's shape) written there.

    The norm is sqrt(add.reduce(x * x)), what np.linalg.norm computes, so both ways give the same bits;
    `out` lets a scan reuse one buffer instead of faulting in fresh pages for every 100 MB temporary.
    """
    x = np.asarray(x, np.float32)
    if out is None:
        return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), 1e-12)
    norm = np.sqrt(np.add.reduce(np.multiply(x, x, out=out), axis=axis, keepdims=True))
    return np.divide(x, np.maximum(norm, 1e-12), out=out)


def mean_pool(emb: np.ndarray) -> np.ndarray:
    """Frame embeddings [V, K, D] -> unit mean of unit frames [V, D] float32."""
    return unit_mean(l2_normalise(emb))


def unit_mean(unit_frames: np.ndarray) -> np.ndarray:
    """mean_pool from frames [V, K, D] already made unit length (for callers that need those too)."""
    return l2_normalise(unit_frames.mean(1))
