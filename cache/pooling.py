"""The plain CLIP video embedding: unit mean of unit frame embeddings (numpy, defined once here)."""
import numpy as np


def l2_normalise(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Unit rows in float32 (zero rows stay zero)."""
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), 1e-12)


def mean_pool(emb: np.ndarray) -> np.ndarray:
    """Frame embeddings [V, K, D] -> unit mean of unit frames [V, D] float32."""
    return l2_normalise(l2_normalise(emb).mean(1))
