"""Text-to-video retrieval: class prompts as queries (mAP, R@K) and captions (R@K, median/mean rank)."""
from typing import Dict

import numpy as np

from evaluate import metrics as M


def class_prompt_retrieval(video_emb: np.ndarray, labels: np.ndarray, text_emb: np.ndarray) -> Dict[str, float]:
    """Each class's prompt embedding ranks all labelled videos; its own class's videos are relevant.

    video_emb [V, D], labels [V] (cache class index, -1 unlabelled), text_emb [C, D].
    """
    keep = np.flatnonzero(labels >= 0)
    text = M.l2_normalise(text_emb)                                              # [C, D]
    acc = M.MultiLabelAccumulator()
    for s in range(0, len(text), M.QUERY_CHUNK):  # [chunk, V'] at a time, never [C, V'] float64
        classes = np.arange(s, min(s + M.QUERY_CHUNK, len(text)))
        acc.add(_scores(text[classes], video_emb, keep), labels[keep][None, :] == classes[:, None])
    return acc.result()


def _scores(query: np.ndarray, video_emb: np.ndarray, rows: np.ndarray, block: int = 65536) -> np.ndarray:
    """Cosines [Q, len(rows)] of unit queries with the given video rows, reading the videos a block at a time
    (no [V, D] copy of a memory-mapped video_emb)."""
    out = np.empty((len(query), len(rows)), np.float32)
    for s in range(0, len(rows), block):
        out[:, s:s + block] = query @ M.l2_normalise(video_emb[rows[s:s + block]]).T
    return out


def caption_retrieval(video_emb: np.ndarray, caption_emb: np.ndarray, gt: np.ndarray) -> Dict[str, float]:
    """Caption i should find video gt[i]: R@1/5/10, median and mean rank (CLIP4Clip's text-to-video).

    video_emb [V, D], caption_emb [Q, D], gt [Q] row of each caption's video.
    """
    out = M.rank_summary(M.embedding_ranks(M.l2_normalise(caption_emb), M.l2_normalise(video_emb), gt))
    out["queries"] = int(len(gt))
    return out
