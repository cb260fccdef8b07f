"""Text-to-video retrieval: class prompts as queries (mAP, R@K) and captions (R@K, median/mean rank)."""
from typing import Dict

import numpy as np

from evaluate import metrics as M


def class_prompt_retrieval(video_emb: np.ndarray, labels: np.ndarray, text_emb: np.ndarray) -> Dict[str, float]:
    """Each class's prompt embedding ranks all labelled videos; its own class's videos are relevant.

    video_emb [V, D], labels [V] (cache class index, -1 unlabelled), text_emb [C, D].
    """
    keep = labels >= 0
    sim = M.l2_normalise(text_emb) @ M.l2_normalise(video_emb[keep]).T          # [C, V']
    relevant = labels[keep][None, :] == np.arange(len(text_emb))[:, None]       # [C, V']
    return M.multi_label_retrieval(sim, relevant)


def caption_retrieval(video_emb: np.ndarray, caption_emb: np.ndarray, gt: np.ndarray) -> Dict[str, float]:
    """Caption i should find video gt[i]: R@1/5/10, median and mean rank (CLIP4Clip's text-to-video).

    video_emb [V, D], caption_emb [Q, D], gt [Q] row of each caption's video.
    """
    sim = M.l2_normalise(caption_emb) @ M.l2_normalise(video_emb).T             # [Q, V]
    out = M.rank_summary(M.gt_ranks(sim, gt))
    out["queries"] = int(len(gt))
    return out
