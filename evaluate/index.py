"""Video embeddings normalised once for fast repeated text queries: a coarse pass, then exact re-ranking."""
import numpy as np
import torch

BLOCK = 65536    # rows normalised at a time: bounds the float32 temporary
SLACK = 64       # extra candidates re-ranked exactly, so low-precision ties cannot change the top-k


def _coarse_dtype() -> torch.dtype:
    # bfloat16 halves the memory read per query and runs on the CPU's bf16 units (AVX-512/AMX);
    # without them float32 is the faster choice.
    return torch.bfloat16 if "AVX512" in torch.backends.cpu.get_cpu_capability() else torch.float32


class VideoIndex:
    """Unit-length video embeddings [V, D], ranked by cosine with a query, best first."""

    def __init__(self, video_emb: np.ndarray):
        self.emb = video_emb                                           # [V, D] as given (exact pass)
        dtype = _coarse_dtype()
        parts = []
        for s in range(0, len(video_emb), BLOCK):
            block = torch.from_numpy(np.asarray(video_emb[s:s + BLOCK], np.float32))   # [b, D]
            parts.append((block / block.norm(dim=1, keepdim=True).clamp_min(1e-12)).to(dtype))
        self.unit = torch.cat(parts) if parts else torch.zeros((0, video_emb.shape[1]), dtype=dtype)

    def __len__(self) -> int:
        return len(self.emb)

    def top(self, query: np.ndarray, k: int) -> np.ndarray:
        """Rows of the k best videos for query [D]; ties go to the earlier row."""
        k = min(k, len(self))
        if k <= 0:
            return np.zeros(0, np.int64)
        q = torch.from_numpy(np.asarray(query, np.float32))
        q = (q / q.norm().clamp_min(1e-12)).to(self.unit.dtype)
        coarse = (self.unit @ q).float()                              # [V]
        cand = torch.topk(coarse, min(len(self), k + SLACK)).indices.numpy()
        cand.sort()                                                   # row order, so ties stay stable
        exact = exact_scores(self.emb[cand], query)                   # [c]
        return cand[np.argsort(-exact, kind="stable")[:k]]


def exact_scores(video_emb: np.ndarray, query: np.ndarray) -> np.ndarray:
    """float64 cosine of each row of video_emb [n, D] with query [D]. [n]"""
    v = np.asarray(video_emb, np.float64)
    q = np.asarray(query, np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return v @ (q / max(np.linalg.norm(q), 1e-12))
