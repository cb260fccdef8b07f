"""Open-set scores of a run that held classes out, from the head's own logits: seen, unseen, H, unknown rejection."""
from typing import Dict, List, Optional, Sequence

import numpy as np

from evaluate import metrics as M


def open_set_scores(logits: np.ndarray, cand_idx: np.ndarray, truth: np.ndarray, class_names: Sequence[str],
                    seen: List[str], unseen: List[str], scores_any_text: bool = True) -> Optional[Dict[str, float]]:
    """logits [T, C'] of the test videos over the head's candidate classes cand_idx [C'] (cache class indices),
    truth [T] cache class index.

    Each video is classified among the seen + unseen candidates (generalised zero-shot) by the head's own
    logits, so X-CLIP's video-conditioned prompts count and a linear probe, which has no logit for a class
    it never saw, gets "unseen": None (n/a) instead of a cosine it cannot produce. Rejection scores each
    video by its largest logit over the seen classes; AUROC = telling known (positive) from unknown.
    """
    index = {n: i for i, n in enumerate(class_names)}
    seen_idx = np.array([index[n] for n in seen if n in index], np.int64)
    unseen_idx = np.array([index[n] for n in unseen if n in index], np.int64)
    if not len(seen_idx) or not len(unseen_idx):
        return None
    logits = np.asarray(logits, np.float64)
    cand_idx = np.asarray(cand_idx, np.int64)
    cols = np.flatnonzero(np.isin(cand_idx, np.concatenate([seen_idx, unseen_idx])))   # [S'+U']
    seen_cols = np.flatnonzero(np.isin(cand_idx, seen_idx))
    scores_unseen = scores_any_text and bool(np.isin(unseen_idx, cand_idx).all())
    pred = cand_idx[cols[logits[:, cols].argmax(1)]] if len(logits) and len(cols) else np.zeros(0, np.int64)
    is_seen, is_unseen = np.isin(truth, seen_idx), np.isin(truth, unseen_idx)
    acc_s = float((pred[is_seen] == truth[is_seen]).mean()) if is_seen.any() and len(pred) else float("nan")
    acc_u = (float((pred[is_unseen] == truth[is_unseen]).mean()) if is_unseen.any() and len(pred) else float("nan")) \
        if scores_unseen else None
    best_seen = logits[:, seen_cols].max(1) if len(logits) and len(seen_cols) else np.zeros(len(truth))  # [T]
    return {"seen": acc_s, "unseen": acc_u,
            "harmonic": M.harmonic_mean(acc_s, acc_u) if acc_u is not None else None,
            "auroc_unknown": M.auroc(best_seen[is_seen], best_seen[is_unseen]),
            "scores_unseen": scores_unseen,
            "videos_seen": int(is_seen.sum()), "videos_unseen": int(is_unseen.sum()),
            "classes_seen": int(len(seen_idx)), "classes_unseen": int(len(unseen_idx))}
