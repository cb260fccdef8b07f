"""Open-set scores of a run that held classes out: seen, unseen, harmonic mean and unknown rejection."""
from typing import Dict, List, Optional, Sequence

import numpy as np

from evaluate import metrics as M


def open_set_scores(video_emb: np.ndarray, truth: np.ndarray, text_emb: np.ndarray, class_names: Sequence[str],
                    seen: List[str], unseen: List[str]) -> Optional[Dict[str, float]]:
    """video_emb [T, D] test videos, truth [T] cache class index, text_emb [C, D] for every cache class.

    Each video is classified among seen + unseen classes by cosine (generalised zero-shot). Rejection
    scores each video by its best cosine with a *seen* class: unknown videos should score lower, and
    the AUROC is that of telling known (positive) from unknown (negative) by that score.
    """
    index = {n: i for i, n in enumerate(class_names)}
    seen_idx = np.array([index[n] for n in seen if n in index], np.int64)
    unseen_idx = np.array([index[n] for n in unseen if n in index], np.int64)
    if not len(seen_idx) or not len(unseen_idx):
        return None
    both = np.concatenate([seen_idx, unseen_idx])                                    # [S+U]
    sim = M.l2_normalise(video_emb) @ M.l2_normalise(text_emb[both]).T               # [T, S+U]
    pred = both[sim.argmax(1)] if len(sim) else np.zeros(0, np.int64)
    is_seen = np.isin(truth, seen_idx)
    is_unseen = np.isin(truth, unseen_idx)
    acc_s = float((pred[is_seen] == truth[is_seen]).mean()) if is_seen.any() else float("nan")
    acc_u = float((pred[is_unseen] == truth[is_unseen]).mean()) if is_unseen.any() else float("nan")
    best_seen = sim[:, :len(seen_idx)].max(1) if len(sim) else np.zeros(0)          # [T]
    return {"seen": acc_s, "unseen": acc_u, "harmonic": M.harmonic_mean(acc_s, acc_u),
            "auroc_unknown": M.auroc(best_seen[is_seen], best_seen[is_unseen]),
            "videos_seen": int(is_seen.sum()), "videos_unseen": int(is_unseen.sum()),
            "classes_seen": int(len(seen_idx)), "classes_unseen": int(len(unseen_idx))}
