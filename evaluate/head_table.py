"""The per-head part of a report: accuracies with intervals, frame curves, best head's confusion."""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np
from clipvid.progress import progress as progress_display

from cache.reader import CacheReader
from evaluate import metrics as M
from evaluate.frames_curve import accuracy_vs_frames
from evaluate.heads import HeadScorer
from evaluate.runs import Run, RunError
from train.splits import id_order


@dataclass
class HeadResult:
    """What the report says about one head."""
    run: Run
    row: Dict[str, Any]                          # the table row (JSON-able)
    truth: np.ndarray                            # [T] cache class index of the test videos
    pred: np.ndarray                             # [T] predicted cache class index, -1 unknown
    scorer: Optional[HeadScorer] = None
    logits: Optional[np.ndarray] = None          # [T, C'] an open-set run's test logits (its figures use them)
    curve: Optional[Dict[str, List[float]]] = None
    notes: List[str] = field(default_factory=list)

    @property
    def top1(self) -> float:
        v = self.row["top1"]["value"]
        return v if np.isfinite(v) else -1.0


def _point(value: Any) -> Dict[str, float]:
    v = float(value) if isinstance(value, (int, float)) else float("nan")
    return {"value": v, "low": float("nan"), "high": float("nan")}


def _from_files(run: Run, reader: CacheReader, resamples: int) -> HeadResult:
    """When the head cannot be loaded: top-1 and mean-class from predictions.csv, top-5 as the run said."""
    index = {n: i for i, n in enumerate(reader.class_names)}
    rows = [p for p in run.predictions if p.get("true") in index]
    rows = [rows[i] for i in id_order([p.get("id", "") for p in rows])]  # as test_rows: video-id order
    truth = np.array([index[p["true"]] for p in rows], np.int64)
    pred = np.array([index.get(p["predicted"], -1) for p in rows], np.int64)
    if len(rows):
        stats = M.summarise_hits(pred == truth, pred == truth, truth, resamples)
        stats["top5"] = _point((run.metrics.get("test") or {}).get("top5"))
    else:
        stats = {k: _point((run.metrics.get("test") or {}).get(k)) for k in ("top1", "top5", "mean_class")}
    return HeadResult(run, {**stats, "source": "predictions.csv"}, truth, pred)


def score_run(run: Run, reader: CacheReader, device: str, resamples: int,
              shared: Optional[Dict] = None) -> HeadResult:
    """Recompute a head's test accuracies through train.api; fall back to its files if it will not load."""
    from evaluate.cross import CrossScorer, is_cross_dataset
    cross = is_cross_dataset(run, reader)
    if cross:  # video_emb.npy and predictions.csv describe the training cache's videos, not these
        run.video_emb, run.predictions = None, []
        run.notes = [n for n in run.notes if not n.startswith("video_emb.npy")]
    try:
        scorer = CrossScorer(run, reader, device) if cross else HeadScorer(run, reader, device, shared)
    except RunError as exc:
        if cross:  # the run's own files describe another cache: never report them here
            raise
        made_for = run.metrics.get("cache_fingerprint")
        if made_for and made_for != reader.fingerprint:
            # Its stored numbers describe another cache: skip the run rather than report them.
            raise RunError(f"made for another cache (fingerprint {made_for}, this one {reader.fingerprint})")
        result = _from_files(run, reader, resamples)
        result.notes.append(f"{exc}; numbers taken from the run's files")
    else:
        # Score with the frames the head was trained on, so the table agrees with training's own numbers.
        trained_k = run.metrics.get("frames")
        rows = None
        if isinstance(trained_k, int) and 0 < trained_k < reader.frames:
            from train.data import frame_subset
            rows = np.asarray(frame_subset(reader.frames, trained_k), np.int64)
        # [T] each; the [T, C'] logits only for an open-set run, whose figures need them.
        ahead, pred, logits = scorer.rank_scores(rows, keep_logits=bool(run.open_set))
        hits1, hits5 = scorer.hits(ahead, 1), scorer.hits(ahead, 5)
        result = HeadResult(run, {**M.summarise_hits(hits1, hits5, scorer.truth, resamples), "source": "recomputed"},
                            scorer.truth, pred, scorer, logits)
        result.curve = accuracy_vs_frames(scorer, reader.frames)
    result.row.update({"name": run.name, "head": run.head, "seconds": run.seconds,
                       "test_videos": int(len(result.truth)), "frames": run.metrics.get("frames"),
                       "epochs_run": run.metrics.get("epochs_run"), "cross_dataset": cross})
    return result


def score_runs(runs: List[Run], reader: CacheReader, device: str, resamples: int,
               warnings: List[str], progress: bool = True) -> List[HeadResult]:
    """Score every run; a run that breaks in any way becomes a warning, never a failed report."""
    from train.device import one_blas_thread
    results, shared = [], {}  # shared: test-split frame embeddings, read once per distinct split
    with one_blas_thread():   # heads score in torch and numpy by turns: one pool of threads at a time
        for run in progress_display(runs, desc="scoring heads", unit="head", quiet=not progress):
            try:
                result = score_run(run, reader, device, resamples, shared)
            except Exception as exc:  # noqa: BLE001 - one broken head must not cost the whole report
                warnings.append(f"skipped run {run.name}: {type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''}")
                continue
            warnings.extend(f"run {run.name}: {n}" for n in run.notes + result.notes)
            results.append(result)
    return results


def best_of(results: List[HeadResult]) -> Optional[HeadResult]:
    """The head with the highest test top-1 (the first listed on a tie)."""
    return max(results, key=lambda r: r.top1) if results else None


def confusion_block(best: HeadResult, class_names: List[str]) -> Dict[str, Any]:
    """Confusion matrix and per-class accuracy of the best head over the cache's classes."""
    ok = best.pred >= 0
    cm = M.confusion_matrix(best.truth[ok], best.pred[ok], len(class_names))
    per = M.per_class_accuracy(best.pred == best.truth, best.truth, len(class_names))
    return {"head": best.run.name, "classes": list(class_names), "matrix": cm.tolist(),
            "per_class": {n: (None if not np.isfinite(a) else float(a)) for n, a in zip(class_names, per)}}
