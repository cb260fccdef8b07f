"""Evaluation maths in plain numpy: accuracies, bootstrap intervals, ranks, recall, mAP, AUROC."""
from typing import Dict, Sequence

import numpy as np

from cache.pooling import l2_normalise, mean_pool  # noqa: F401  (one definition, re-exported)
from train.metrics import topk_correct  # noqa: F401  (one top-k: training reports with the same ties)

RECALL_KS = (1, 5, 10)


def mean_class_accuracy(correct: np.ndarray, truth: np.ndarray) -> float:
    """Mean over the classes present in `truth` of each class's accuracy."""
    correct = np.asarray(correct, np.float64)
    truth = np.asarray(truth, np.int64)
    if not len(truth):
        return float("nan")
    hits = np.bincount(truth, weights=correct)
    counts = np.bincount(truth)
    present = counts > 0
    return float((hits[present] / counts[present]).mean())


def per_class_accuracy(correct: np.ndarray, truth: np.ndarray, n_classes: int) -> np.ndarray:
    """[C] accuracy per class, NaN for classes with no videos."""
    hits = np.bincount(truth, weights=np.asarray(correct, np.float64), minlength=n_classes)
    counts = np.bincount(truth, minlength=n_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """[C, C] counts, rows = true class, columns = predicted class."""
    flat = np.asarray(truth, np.int64) * n_classes + np.asarray(pred, np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def bootstrap_indices(n: int, resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """[B, n] row indices drawn with replacement; a fixed seed keeps reports reproducible."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _interval(values: np.ndarray, point: float, level: float) -> Dict[str, float]:
    values = values[np.isfinite(values)]
    if not len(values):
        return {"value": point, "low": float("nan"), "high": float("nan")}
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return {"value": point, "low": float(lo), "high": float(hi)}


def bootstrap_mean_ci(values: np.ndarray, resamples: int = 1000, seed: int = 0,
                      level: float = 0.95) -> Dict[str, float]:
    """Percentile bootstrap interval of the mean of per-video values (e.g. top-1 hits)."""
    values = np.asarray(values, np.float64)
    if not len(values):
        return {"value": float("nan"), "low": float("nan"), "high": float("nan")}
    idx = bootstrap_indices(len(values), resamples, seed)   # [B, n]
    return _interval(values[idx].mean(1), float(values.mean()), level)


def bootstrap_mean_class_ci(correct: np.ndarray, truth: np.ndarray, resamples: int = 1000, seed: int = 0,
                            level: float = 0.95) -> Dict[str, float]:
    """Percentile bootstrap interval of mean per-class accuracy, resampling videos (not classes)."""
    correct = np.asarray(correct, np.float64)
    truth = np.asarray(truth, np.int64)
    if not len(truth):
        return {"value": float("nan"), "low": float("nan"), "high": float("nan")}
    n_cls = int(truth.max()) + 1
    idx = bootstrap_indices(len(truth), resamples, seed)    # [B, n]
    # One bincount over (resample, class) pairs instead of a Python loop over resamples.
    slot = (np.arange(resamples)[:, None] * n_cls + truth[idx]).ravel()
    hits = np.bincount(slot, weights=correct[idx].ravel(), minlength=resamples * n_cls).reshape(resamples, n_cls)
    counts = np.bincount(slot, minlength=resamples * n_cls).reshape(resamples, n_cls)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    return _interval(np.nanmean(acc, axis=1), mean_class_accuracy(correct, truth), level)


def gt_ranks(sim: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """1-based rank of each query's true item: [Q, V] similarities, [Q] true column -> [Q].

    rank = 1 + number of items scoring strictly higher, as CLIP4Clip computes it.
    """
    sim = np.asarray(sim, np.float64)
    own = sim[np.arange(len(gt)), np.asarray(gt, np.int64)][:, None]  # [Q, 1]
    return 1 + (sim > own).sum(1)


def rank_summary(ranks: np.ndarray, ks: Sequence[int] = RECALL_KS) -> Dict[str, float]:
    """R@K (fraction of queries with the true item in the top K), median and mean rank."""
    ranks = np.asarray(ranks, np.float64)
    out = {f"R@{k}": float((ranks <= k).mean()) if len(ranks) else float("nan") for k in ks}
    out["median_rank"] = float(np.median(ranks)) if len(ranks) else float("nan")
    out["mean_rank"] = float(ranks.mean()) if len(ranks) else float("nan")
    return out


def _order(scores: np.ndarray) -> np.ndarray:
    # Highest first; among equal scores the lower index first, so results are deterministic.
    return np.argsort(-np.asarray(scores, np.float64), kind="stable")


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """AP of one ranked list: mean of precision@rank over the relevant items; NaN if none relevant."""
    rel = np.asarray(relevant, bool)[_order(scores)]
    if not rel.any():
        return float("nan")
    hits = np.cumsum(rel)                                # relevant items seen up to each rank
    ranks = np.arange(1, len(rel) + 1)
    return float((hits[rel] / ranks[rel]).mean())


def multi_label_retrieval(sim: np.ndarray, relevant: np.ndarray,
                          ks: Sequence[int] = RECALL_KS) -> Dict[str, float]:
    """Queries with several relevant items: [Q, V] scores and [Q, V] bool relevance.

    mAP over queries that have a relevant item; R@K = share of those queries with a relevant
    item in their top K.
    """
    sim = np.asarray(sim, np.float64)
    relevant = np.asarray(relevant, bool)
    keep = relevant.any(1)
    aps = [average_precision(s, r) for s, r in zip(sim[keep], relevant[keep])]
    out = {"mAP": float(np.mean(aps)) if aps else float("nan"), "queries": int(keep.sum())}
    first_hit = []
    for s, r in zip(sim[keep], relevant[keep]):
        first_hit.append(int(np.argmax(r[_order(s)])) + 1)  # 1-based rank of the first relevant item
    first_hit = np.asarray(first_hit)
    for k in ks:
        out[f"R@{k}"] = float((first_hit <= k).mean()) if len(first_hit) else float("nan")
    return out


def auroc(pos_scores: np.ndarray, neg_scores: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting one half (Mann-Whitney U)."""
    pos = np.asarray(pos_scores, np.float64)
    neg = np.asarray(neg_scores, np.float64)
    if not len(pos) or not len(neg):
        return float("nan")
    both = np.concatenate([pos, neg])
    order = np.argsort(both, kind="mergesort")
    ranks = np.empty(len(both), np.float64)
    sorted_vals = both[order]
    # Average ranks over runs of equal values: that is what makes a tie count one half.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_vals)) + 1]
    ends = np.r_[starts[1:], len(both)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    u = ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def harmonic_mean(a: float, b: float) -> float:
    """2ab / (a + b); 0 when both are 0 (the usual seen/unseen summary H)."""
    if not np.isfinite(a) or not np.isfinite(b):
        return float("nan")
    return 0.0 if a + b == 0 else float(2 * a * b / (a + b))


def summarise_hits(correct1: np.ndarray, correct5: np.ndarray, truth: np.ndarray, resamples: int = 1000,
                   seed: int = 0) -> Dict[str, Dict[str, float]]:
    """top1 / top5 / mean_class, each {value, low, high} with a 95% bootstrap interval."""
    return {"top1": bootstrap_mean_ci(correct1, resamples, seed),
            "top5": bootstrap_mean_ci(correct5, resamples, seed),
            "mean_class": bootstrap_mean_class_ci(correct1, truth, resamples, seed)}

