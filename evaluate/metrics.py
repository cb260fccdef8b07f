"""Evaluation maths in plain numpy: accuracies, bootstrap intervals, ranks, recall, mAP, AUROC."""
from typing import Dict, Sequence

import numpy as np

from cache.pooling import l2_normalise, mean_pool  # noqa: F401  (one definition, re-exported)
from train.metrics import topk_correct, truth_ahead  # noqa: F401  (one top-k: training's, with its ties)

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


def paired_bootstrap(a: np.ndarray, b: np.ndarray, resamples: int = 1000, seed: int = 0) -> Dict[str, float]:
    """Paired percentile bootstrap of mean(a) - mean(b) over the same videos: a [T] and b [T] per-video
    scores (hits) in the same video order; the share of resamples where a does not beat b."""
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)   # [T]
    means = diff[bootstrap_indices(len(diff), resamples, seed)].mean(axis=1)   # [B]
    lo, hi = np.quantile(means, [0.025, 0.975])
    return {"diff": float(diff.mean()), "low": float(lo), "high": float(hi),
            "p_not_better": float((means <= 0).mean()), "videos": int(len(diff))}


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


QUERY_CHUNK = 64  # queries scored at once: [64, V] float32 is 51 MB at V = 200,000, never [Q, V] float64


def gt_ranks(sim: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """1-based rank of each query's true item: [Q, V] similarities, [Q] true column -> [Q].

    rank = 1 + number of items scoring strictly higher, as CLIP4Clip computes it.
    """
    sim = np.asarray(sim)
    own = sim[np.arange(len(gt)), np.asarray(gt, np.int64)][:, None]  # [Q, 1]
    return 1 + (sim > own).sum(1)


def embedding_ranks(query: np.ndarray, items: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """gt_ranks of unit query rows [Q, D] against unit item rows [V, D], a chunk of queries at a time."""
    out = np.zeros(len(gt), np.int64)
    for s in range(0, len(gt), QUERY_CHUNK):
        out[s:s + QUERY_CHUNK] = gt_ranks(query[s:s + QUERY_CHUNK] @ items.T, gt[s:s + QUERY_CHUNK])
    return out


def rank_summary(ranks: np.ndarray, ks: Sequence[int] = RECALL_KS) -> Dict[str, float]:
    """R@K (fraction of queries with the true item in the top K), median and mean rank."""
    ranks = np.asarray(ranks, np.float64)
    out = {f"R@{k}": float((ranks <= k).mean()) if len(ranks) else float("nan") for k in ks}
    out["median_rank"] = float(np.median(ranks)) if len(ranks) else float("nan")
    out["mean_rank"] = float(ranks.mean()) if len(ranks) else float("nan")
    return out


def relevant_ranks(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Sorted 1-based ranks [R] of the relevant items of one list, highest score first and, among equal
    scores, the lower index first; one sort of the scores, no [V] index array."""
    scores = np.asarray(scores)
    where = np.flatnonzero(relevant)
    if not len(where):
        return np.zeros(0, np.int64)
    ordered = np.sort(scores)                                            # ascending
    own = scores[where]
    ahead = len(scores) - np.searchsorted(ordered, own, side="right")   # strictly higher
    tied = np.searchsorted(ordered, own, side="right") - np.searchsorted(ordered, own, side="left") > 1
    for i in np.flatnonzero(tied):                                       # equal scores: lower index first
        ahead[i] += int(np.count_nonzero(scores[:where[i]] == own[i]))
    return np.sort(ahead + 1)


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """AP of one ranked list: mean of precision@rank over the relevant items; NaN if none relevant."""
    ranks = relevant_ranks(scores, relevant)
    if not len(ranks):
        return float("nan")
    return float((np.arange(1, len(ranks) + 1) / ranks).mean())


class MultiLabelAccumulator:
    """mAP and R@K over queries fed a chunk at a time ([q, V] scores, [q, V] relevance)."""

    def __init__(self, ks: Sequence[int] = RECALL_KS):
        self.ks, self.aps, self.first = ks, [], []

    def add(self, sim: np.ndarray, relevant: np.ndarray) -> None:
        for s, r in zip(sim, np.asarray(relevant, bool)):
            ranks = relevant_ranks(s, r)
            if len(ranks):  # a query with nothing relevant is left out
                self.aps.append(float((np.arange(1, len(ranks) + 1) / ranks).mean()))
                self.first.append(int(ranks[0]))

    def result(self) -> Dict[str, float]:
        first = np.asarray(self.first)
        out = {"mAP": float(np.mean(self.aps)) if self.aps else float("nan"), "queries": len(self.aps)}
        for k in self.ks:
            out[f"R@{k}"] = float((first <= k).mean()) if len(first) else float("nan")
        return out


def multi_label_retrieval(sim: np.ndarray, relevant: np.ndarray,
                          ks: Sequence[int] = RECALL_KS) -> Dict[str, float]:
    """Queries with several relevant items: [Q, V] scores and [Q, V] bool relevance.

    mAP over queries that have a relevant item; R@K = share of those queries with a relevant
    item in their top K.
    """
    acc = MultiLabelAccumulator(ks)
    acc.add(np.asarray(sim), relevant)
    return acc.result()


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

