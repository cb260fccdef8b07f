"""Rank videos for a text query: a coarse pass (int8 packed, or a scan of the stored array), then exact re-ranking."""
import warnings
from typing import Callable, Iterator, Optional, Tuple

import numpy as np
import torch

from clipvid.progress import progress as progress_display

SCAN_BLOCK = 1 << 16     # rows read and scored at a time by a scan: bounds the float32 temporary
PACK_BLOCK = 1 << 18     # rows per packed int8 matrix: fewer, larger kernel calls per query
SLACK = 64               # extra candidates re-ranked exactly, so the coarse pass's rounding cannot change the top-k


def int8_available() -> bool:
    """Whether torch has its fbgemm int8 matrix kernels (x86 builds do)."""
    return "fbgemm" in torch.backends.quantized.supported_engines or "x86" in torch.backends.quantized.supported_engines


def blocks(emb, size: int) -> Iterator[Tuple[int, np.ndarray]]:
    """(first row, rows [b, D]) of an array or of a cache RowView (read part by part: each a memory map)."""
    for first, part in getattr(emb, "parts", None) or [(0, emb)]:
        for s in range(0, len(part), size):
            yield first + s, part[s:s + size]


def _unit_block(block: np.ndarray) -> torch.Tensor:
    with warnings.catch_warnings():  # a read-only memory map: torch only reads it (.float() copies)
        warnings.simplefilter("ignore")
        b = torch.from_numpy(np.ascontiguousarray(block)).float()                   # [b, D]
    return b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _pack(unit: torch.Tensor):
    """Unit rows [b, D] -> fbgemm's packed int8 matrix, one scale per row."""
    scale = (unit.abs().amax(1) / 127).clamp_min(1e-12)                              # [b]
    codes = torch.round(unit / scale[:, None]).to(torch.int8)                        # [b, D]
    with warnings.catch_warnings():  # torch marks its eager quantised tensors deprecated; the kernels remain
        warnings.simplefilter("ignore")
        q = torch._make_per_channel_quantized_tensor(codes, scale.double(), torch.zeros(len(codes), dtype=torch.long), 0)
        return torch.ops.quantized.linear_prepack(q, None)


class VideoIndex:
    """Video embeddings [V, D] (any float array, memory-mapped is fine) ranked by cosine with a query, best first.

    packed=True builds an int8 copy once (one pass, with a progress bar) so each query reads a quarter of
    the float32 bytes; packed=False scans the stored array block by block on every query (no build: best
    for one query). Either way the candidates are re-ranked exactly from the stored array.
    """

    def __init__(self, video_emb: np.ndarray, packed: bool = False, progress: bool = False,
                 on_block: Optional[Callable[[int, int], None]] = None):
        self.emb = video_emb                                                          # [V, D] as given
        self._packs = None
        if packed and len(video_emb):
            self._packs = []
            steps = list(blocks(video_emb, PACK_BLOCK))
            for i, (first, block) in enumerate(progress_display(steps, desc="packing video index", unit="block",
                                                                quiet=not progress)):
                unit = _unit_block(block)
                self._packs.append((first, _pack(unit) if int8_available() else unit))
                if on_block:
                    on_block(i + 1, len(steps))

    def __len__(self) -> int:
        return len(self.emb)

    def _coarse(self, q: torch.Tensor, keep: int) -> np.ndarray:
        """Rows of the `keep` best coarse scores, in row order."""
        parts = []
        if self._packs is not None:
            for first, pack in self._packs:
                if isinstance(pack, torch.Tensor):
                    parts.append((first, pack @ q))                                            # [b]
                else:
                    parts.append((first, torch.ops.quantized.linear_dynamic(q[None], pack)[0]))  # [b]
        else:
            parts = [(first, _unit_block(block) @ q) for first, block in blocks(self.emb, SCAN_BLOCK)]   # [b] each
        rows, scores = [], []
        for start, s in parts:  # the best `keep` of each block, then of those
            top = torch.topk(s, min(keep, len(s)))
            rows.append(top.indices.numpy() + start)
            scores.append(top.values.numpy())
        rows, scores = np.concatenate(rows), np.concatenate(scores)
        best = np.argpartition(-scores, keep - 1)[:keep] if len(rows) > keep else np.arange(len(rows))
        return np.sort(rows[best])

    def top(self, query: np.ndarray, k: int, slack: int = SLACK) -> np.ndarray:
        """Rows of the k best videos for query [D]; ties go to the earlier row."""
        k = min(k, len(self))
        if k <= 0:
            return np.zeros(0, np.int64)
        q = torch.from_numpy(np.asarray(query, np.float32))
        q = q / q.norm().clamp_min(1e-12)
        cand = self._coarse(q, min(len(self), k + slack))                           # row order, so ties stay stable
        exact = exact_scores(self.emb[cand], query)                                   # [c]
        return cand[np.argsort(-exact, kind="stable")[:k]]

    def scores(self, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Exact cosines of `rows` with query [D]. [len(rows)]"""
        rows = np.asarray(rows, np.int64)
        order = np.argsort(rows)
        out = np.empty(len(rows), np.float64)
        out[order] = exact_scores(self.emb[rows[order]], query)                      # memory maps want sorted rows
        return out


def exact_scores(video_emb: np.ndarray, query: np.ndarray) -> np.ndarray:
    """float64 cosine of each row of video_emb [n, D] with query [D]. [n]"""
    v = np.asarray(video_emb, np.float64)
    q = np.asarray(query, np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return v @ (q / max(np.linalg.norm(q), 1e-12))


def recall_at(index: "VideoIndex", queries: np.ndarray, k: int) -> float:
    """Share of the true top-k rows that index.top returns over queries [Q, D]; the truth is a float32 scan
    whose best k+1000 are re-ranked in float64 (float32 rounding is far below that margin)."""
    truth = VideoIndex(index.emb)
    found = [len(set(index.top(q, k)) & set(truth.top(q, k, slack=1000))) for q in queries]
    return float(np.sum(found) / (k * len(queries))) if len(queries) else float("nan")
