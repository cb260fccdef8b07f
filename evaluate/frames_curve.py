"""Accuracy against the number of frames a head sees (evenly spaced subsets of the cached N)."""
from typing import Dict, List

import numpy as np

from evaluate.heads import HeadScorer


def frame_counts(n: int) -> List[int]:
    """1, 2, 4, ... below N, then N itself."""
    counts, k = [], 1
    while k < n:
        counts.append(k)
        k *= 2
    return counts + [n]


def accuracy_vs_frames(scorer: HeadScorer, n: int) -> Dict[str, List[float]]:
    """{"frames": [k...], "top1": [...]} on the head's test split, frames chosen by train.data.frame_subset."""
    from train.data import frame_subset  # the same subset rule training used
    ks, accs = [], []
    for k in frame_counts(n):
        rows = np.asarray(frame_subset(n, k), np.int64)     # [k] row indices
        hits = scorer.hits(scorer.rank_scores(rows)[0], 1)  # [T]
        ks.append(k)
        accs.append(float(hits.mean()) if len(hits) else float("nan"))
    return {"frames": ks, "top1": accs}
