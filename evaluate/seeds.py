"""Pool a head's seed runs into one report row (mean ± sd over seeds), pick the best on validation, test the gap."""
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from evaluate import metrics as M
from evaluate.head_table import HeadResult
from evaluate.runs import group_name


def _num(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and x is not None else float("nan")


def _mean_sd(values: List[float]) -> Dict[str, float]:
    v = np.array([x for x in values if np.isfinite(x)], np.float64)
    return {"mean": float(v.mean()) if len(v) else float("nan"),
            "sd": float(v.std(ddof=1)) if len(v) > 1 else float("nan"), "n": int(len(v))}


def same_videos(results: List[HeadResult]) -> bool:
    """Whether every run was scored on the same test videos in the same order (so hits can be pooled)."""
    first = results[0]
    return all(r.run.split.get("test") == first.run.split.get("test") and np.array_equal(r.truth, first.truth)
               for r in results[1:])


def pooled_hits(results: List[HeadResult]) -> Optional[np.ndarray]:
    """[T] top-1 hit rate of each test video averaged over the seeds, or None when the test sets differ."""
    if not results or not same_videos(results):
        return None
    return np.mean([(r.pred == r.truth).astype(np.float64) for r in results], axis=0)


def group_row(name: str, results: List[HeadResult], resamples: int) -> Dict[str, Any]:
    """One table row for a head's settings folder: the first seed's row plus seed statistics."""
    first = results[0]
    row = dict(first.row)
    row.update({"name": name, "runs": [r.run.name for r in results],
                "seeds": [r.run.metrics.get("seed") for r in results],
                "epochs": first.run.metrics.get("epochs"),
                "epochs_run": [r.run.metrics.get("epochs_run") for r in results],
                "seconds": _num(np.nansum([_num(r.run.seconds) for r in results])) if results else None})
    for key in ("top1", "top5", "mean_class"):
        row[f"{key}_seeds"] = _mean_sd([_num(r.row[key]["value"]) for r in results])
    row["val_top1"] = _mean_sd([_num((r.run.metrics.get("val") or {}).get("top1")) for r in results])
    hits = pooled_hits(results) if len(results) > 1 else None
    if hits is not None:  # the interval of the seed-averaged hits: test videos resampled, seeds kept
        row["top1"] = M.bootstrap_mean_ci(hits, resamples)
        row["mean_class"] = M.bootstrap_mean_class_ci(hits, first.truth, resamples)
    return row


def group_results(results: List[HeadResult], runs_dir: str,
                  resamples: int) -> List[Tuple[Dict[str, Any], List[HeadResult]]]:
    """[(row, its results)] per settings folder, in the order the runs were listed."""
    groups: Dict[str, List[HeadResult]] = {}
    for r in results:
        groups.setdefault(group_name(r.run, runs_dir), []).append(r)
    return [(group_row(name, members, resamples), members) for name, members in groups.items()]


def rank_groups(groups: List[Tuple[Dict[str, Any], List[HeadResult]]]) -> Tuple[List[int], str]:
    """(group indices best first, what ranked them): validation top-1, or test top-1 when no run has one.

    Ties keep the listed order (baselines first), so a trained head must beat a baseline to be chosen.
    """
    val = [g[0]["val_top1"]["mean"] for g in groups]
    if any(np.isfinite(v) for v in val):
        key, how = val, "validation top-1 (mean over seeds)"
    else:
        key, how = [_num(g[0]["top1"]["value"]) for g in groups], "test top-1 (no run has validation scores)"
    order = sorted(range(len(groups)), key=lambda i: -(key[i] if np.isfinite(key[i]) else -1.0))
    return order, how


def paired_gap(a: List[HeadResult], b: List[HeadResult], resamples: int, seed: int = 0) -> Optional[Dict[str, float]]:
    """Paired bootstrap of test top-1(a) - top-1(b) over the same test videos; None when they differ."""
    if not same_videos([a[0], b[0]]):
        return None
    ha, hb = pooled_hits(a), pooled_hits(b)
    if ha is None or hb is None or not len(ha):
        return None
    return M.paired_bootstrap(ha, hb, resamples, seed)       # per-video hits, seeds averaged
