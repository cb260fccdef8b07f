"""Pure accuracy and loss functions over logits [V, C] and true class indices [V]."""
from typing import Dict, Optional, Sequence

import numpy as np


def top_k(scores: np.ndarray, k: int, ordered: bool = True) -> np.ndarray:
    """Column indices [V, k] of the k largest scores per row (k capped at C), best first when `ordered`.

    argpartition is O(C) per row; only the k picked are sorted. Ties go to the lower column, as argmax.
    """
    k = min(k, scores.shape[1])
    if k >= scores.shape[1]:
        top = np.tile(np.arange(scores.shape[1]), (len(scores), 1))
    else:
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]                       # [V, k]
    if not ordered:
        return top
    picked = np.take_along_axis(scores, top, axis=1)                               # [V, k]
    order = np.lexsort((top, -picked), axis=1)                                     # score desc, then column
    return np.take_along_axis(top, order, axis=1)


CHUNK = 1 << 20  # score cells compared at once: a [V, C] float64 copy would grow with the split


def truth_ahead(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per row, how many columns rank above the true one: higher score, or an equal score in a lower column
    (argmax's tie rule). [V, C], [V] -> [V] int64; the true class is in the top k exactly when it is < k.

    Rows are compared a chunk at a time, so memory stays bounded whatever V is."""
    truth = np.asarray(truth, np.int64)
    out = np.zeros(len(truth), np.int64)
    if not len(truth):
        return out
    cols = np.arange(scores.shape[1])[None, :]                   # [1, C]
    step = max(1, CHUNK // max(1, scores.shape[1]))
    for s in range(0, len(truth), step):
        part = np.asarray(scores[s:s + step], np.float64)         # [b, C]
        t = truth[s:s + step]
        own = part[np.arange(len(t)), t][:, None]                 # [b, 1]
        out[s:s + step] = ((part > own) | ((part == own) & (cols < t[:, None]))).sum(1)
    return out


def topk_correct(scores: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    """Per row, whether the true column is among the k highest scores: [V, C], [V] -> [V] bool.

    Ties are broken towards the lower column index, the same way argmax picks a prediction, so
    top-1 here always agrees with the predicted class (tied votes are common).
    """
    return truth_ahead(scores, truth) < k


def topk_accuracy(logits: np.ndarray, true: np.ndarray, k: int) -> float:
    """Fraction of rows whose true class is among the k largest logits (ties as topk_correct breaks them)."""
    if not len(true):
        return float("nan")
    return float(topk_correct(logits, true, k).mean())


def per_class_accuracy(pred: np.ndarray, true: np.ndarray) -> Dict[int, float]:
    """Top-1 accuracy of every class that occurs in `true`."""
    return {int(c): float((pred[true == c] == c).mean()) for c in np.unique(true)}


def mean_class_accuracy(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean over the classes present in `true` of their top-1 accuracy (robust to class imbalance)."""
    acc = per_class_accuracy(pred, true)
    return float(np.mean(list(acc.values()))) if acc else float("nan")


def cross_entropy(logits: np.ndarray, true: np.ndarray) -> float:
    """Mean negative log-softmax of the true class, computed stably."""
    if not len(true):
        return float("nan")
    return float(np.mean(row_cross_entropy(logits, true)))


def row_cross_entropy(logits: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Negative log-softmax of the true class per row [V] float64 (rows of a chunked scan concatenate)."""
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return log_norm - z[np.arange(len(true)), true]


def summarize(logits: np.ndarray, true: np.ndarray,
              class_names: Optional[Sequence[str]] = None) -> Dict[str, object]:
    """top1/top5/mean_class (and per-class top-1 by name when names are given) for one split."""
    true = np.asarray(true, dtype=np.int64)
    pred = logits.argmax(axis=1) if len(true) else np.zeros(0, np.int64)
    return summarize_ranks(truth_ahead(logits, true), pred, true, class_names)


def summarize_ranks(ahead: np.ndarray, pred: np.ndarray, true: np.ndarray,
                    class_names: Optional[Sequence[str]] = None) -> Dict[str, object]:
    """summarize from what a scan keeps per row instead of the logits: truth_ahead and the argmax."""
    true = np.asarray(true, dtype=np.int64)
    hit_rate = (lambda k: float((np.asarray(ahead) < k).mean()) if len(true) else float("nan"))
    out: Dict[str, object] = {"n": int(len(true)), "top1": hit_rate(1), "top5": hit_rate(5),
                              "mean_class": mean_class_accuracy(pred, true)}
    if class_names is not None:
        out["per_class"] = {class_names[c]: a for c, a in per_class_accuracy(pred, true).items()}
    return out


def nan_to_none(block: Dict[str, object]) -> Dict[str, object]:
    """JSON has no NaN: an empty split's accuracies become null."""
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in block.items()}


def history_row(epoch: int, train_loss: float, val_loss: float, val_top1: float) -> Dict[str, float]:
    """One entry of metrics.json's history."""
    return {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_top1": val_top1}

