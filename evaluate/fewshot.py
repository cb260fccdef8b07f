"""Few-shot curves: retrain the runs' heads and the linear probe on K labelled videos per class, score on test."""
import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from clipvid.progress import progress as progress_display

SHOTS = (1, 2, 4, 8, 16)   # X-CLIP's few-shot protocol (K = 2, 4, 8, 16) plus one-shot
DRAWS = 3                  # subsets per K (seeds 0..DRAWS-1); each also seeds the head's training
MAX_EPOCHS = 60            # a run trained longer is retrained for this many: K-shot sets are tiny


def parse_shots(text: str) -> Optional[List[int]]:
    """'auto' -> None (decided by the cache), 'none'/'off' -> [], else sorted distinct K >= 1."""
    key = text.strip().lower()
    if key == "auto":
        return None
    if key in ("none", "off", "0", ""):
        return []
    try:
        shots = sorted({int(s) for s in key.split(",") if s.strip()})
    except ValueError:
        raise ValueError(f"expected auto, none or whole numbers separated by commas, got {text!r}")
    if not shots or shots[0] < 1:
        raise ValueError(f"each K must be at least 1, got {text!r}")
    return shots


@dataclasses.dataclass
class Plan:
    """One curve: a head retrained the way its run was."""
    name: str                          # the report's name for the run's head and settings
    head: str
    frames: Optional[int]              # K of the N cached rows the run used (None: all)
    split_seed: int
    seen: Optional[Tuple[str, ...]]    # open-set run: the classes it trained on
    epochs: int
    config: Dict[str, Any]             # the run's head settings (lr, width, ...)


def plans_for(runs: Sequence[Tuple[str, Any]], frames_cached: int) -> List[Plan]:
    """A plan per (report name, Run) whose head learns from labels; a linear probe with the first run's
    split and frames when the runs hold none (it is the reference every few-shot table shows)."""
    from train.registry import HEADS, PROBE
    out: List[Plan] = []
    for name, run in runs:
        if run.head not in HEADS or not HEADS[run.head].learns:   # baselines learn nothing from labels
            continue
        like = _plan_like(run.metrics, frames_cached)
        epochs = min(int(run.metrics.get("epochs") or MAX_EPOCHS), MAX_EPOCHS)
        out.append(dataclasses.replace(like, name=name, head=run.head, epochs=epochs,
                                       config=dict(run.metrics.get("config") or {})))
    if runs and not any(p.head == PROBE for p in out):
        like = out[0] if out else _plan_like(runs[0][1].metrics, frames_cached)
        out.insert(0, Plan(PROBE, PROBE, like.frames, like.split_seed, like.seen, MAX_EPOCHS, {}))
    return out


def _plan_like(m: Dict[str, Any], frames_cached: int) -> Plan:
    """A plan with the split, frames and open-set classes of a run's metrics (for the reference probe)."""
    frames = m.get("frames") if isinstance(m.get("frames"), int) and m.get("frames") < frames_cached else None
    seen = tuple((m.get("open_set") or {}).get("seen") or ()) or None
    return Plan("", "", frames, int(m.get("split_seed") or 0), seen, MAX_EPOCHS, {})


def _smallest_class(train: np.ndarray, labels: np.ndarray) -> int:
    counts = np.bincount(labels[train])
    return int(counts[counts > 0].min()) if len(train) else 0


def choose_shots(asked: Optional[List[int]], smallest: int) -> Tuple[List[int], List[str]]:
    """(K values to run, notes). auto: SHOTS up to the smallest training class, on when at least two remain.
    An asked K above the smallest class is skipped with a note (it would not be K-shot for that class)."""
    if asked is None:
        shots = [k for k in SHOTS if k <= smallest]
        if len(shots) < 2:
            return [], [f"off: the smallest class has {smallest} training video(s); a curve needs K = 1 and 2 "
                        "at least (--shots auto turns it on from 2 per class)"]
        dropped = [str(k) for k in SHOTS if k > smallest]
        return shots, ([f"K = {', '.join(dropped)} not run: the smallest class has {smallest} training videos"]
                       if dropped else [])
    kept = [k for k in asked if k <= smallest]
    notes = [f"K = {k} skipped: the smallest class has only {smallest} training videos, so a {k}-shot set "
             "cannot be drawn" for k in asked if k > smallest]
    return kept, notes


def _options(plan: Plan, seed: int, split_seed: int):
    from train.registry import HEADS
    from train.run import HeadOptions
    lr = plan.config.get("lr") if HEADS[plan.head].trains else None
    return HeadOptions(epochs=plan.epochs, seed=seed, lr=lr, progress=False, split_seed=split_seed,
                       head_config=plan.config or None)


def _curves_for(cache_path: str, plans: List[Plan], asked: Optional[List[int]], draws: int, device,
                progress: bool) -> Tuple[Dict[str, Any], List[str]]:
    """Curves of plans that share one split (frames, split seed and open-set classes)."""
    from train.prepare import prepare
    from train.registry import HEADS
    from train.run import evaluate_scored, fit_method
    from train.scan import fit_pass, score_pass
    from train.splits import few_shot_rows
    first = plans[0]
    data = prepare(cache_path, first.frames, first.split_seed, None, list(first.seen) if first.seen else None)
    try:
        train, test = data.splits["train"], data.splits["test"]
        smallest = _smallest_class(train, data.labels)
        shots, notes = choose_shots(asked, smallest)
        if not shots:
            return {}, notes
        methods, where = [], []
        jobs = [(k, d) for k in shots for d in range(draws)]
        bar = progress_display(total=len(jobs) * len(plans), desc="few-shot training", unit="fit",
                               quiet=not progress)
        for k, draw in jobs:
            rows = few_shot_rows(train, data.labels, k, draw, data.rank)
            sub = dataclasses.replace(data, splits={"train": rows, "val": rows[:0], "test": test})
            inputs = fit_pass(sub, pooled=True, stats=any(HEADS[p.head].needs_stats for p in plans), progress=False)
            for plan in plans:
                method, _, _ = fit_method(plan.head, sub, _options(plan, draw, first.split_seed), device, inputs)
                methods.append(method)
                where.append((plan.name, k, draw))
                bar.update(1)
        bar.close()
        sub = dataclasses.replace(data, splits={"train": train[:0], "val": train[:0], "test": test})
        scored, _, _ = score_pass(methods, sub, None, progress)
        curves: Dict[str, Any] = {}
        for (name, k, draw), score in zip(where, scored):
            top1 = evaluate_scored(score, sub)["test"]["top1"]
            c = curves.setdefault(name, {"shots": shots, "top1": [[None] * draws for _ in shots]})
            c["top1"][shots.index(k)][draw] = float(top1)
        for c in curves.values():
            values = np.array(c["top1"], np.float64)                       # [len(shots), draws]
            c["mean"] = values.mean(axis=1).tolist()
            c["sd"] = (values.std(axis=1, ddof=1) if draws > 1 else np.zeros(len(shots))).tolist()
        return curves, notes
    finally:
        data.reader.close()


def few_shot(cache_path: str, runs: Sequence[Tuple[str, Any]], frames_cached: int, asked: Optional[List[int]],
             draws: int = DRAWS, device: str = "auto", progress: bool = True) -> Dict[str, Any]:
    """{"shots", "draws", "curves": {name: {"shots", "top1" [K][draw], "mean", "sd"}}, "notes"} for the runs
    (report name, Run); test top-1 of every head retrained on K training videos per class, no validation."""
    from clipvid.errors import CacheError
    from clipvid.device import resolve_device
    from train.device import set_cpu_threads
    from clipvid.errors import UsageError
    out: Dict[str, Any] = {"shots": [], "draws": list(range(draws)), "max_epochs": MAX_EPOCHS, "curves": {},
                           "notes": []}
    if asked == []:
        out["notes"].append("off (--shots none)")
        return out
    plans = plans_for(runs, frames_cached)
    if not plans:
        out["notes"].append("off: no run of a head that learns from labels (linear, lstm, transformer, xclip)")
        return out
    import torch
    dev = resolve_device(device)
    threads = torch.get_num_threads()
    set_cpu_threads(dev)  # one thread: K-shot sets are small, and OpenMP spinning costs more than it gives
    groups: Dict[tuple, List[Plan]] = {}
    for p in plans:
        groups.setdefault((p.frames, p.split_seed, p.seen), []).append(p)
    try:
        for members in groups.values():
            try:
                curves, notes = _curves_for(cache_path, members, asked, draws, dev, progress)
            except (CacheError, UsageError) as exc:
                curves, notes = {}, [f"{', '.join(p.name for p in members)}: not retrained ({exc})"]
            except Exception as exc:  # noqa: BLE001 - a curve that cannot be drawn must not cost the report
                first = (str(exc).strip().splitlines() or [""])[0]
                curves, notes = {}, [f"{', '.join(p.name for p in members)}: not retrained "
                                     f"({type(exc).__name__}: {first})"]
            out["curves"].update(curves)
            out["notes"] += [n for n in notes if n not in out["notes"]]
    finally:
        torch.set_num_threads(threads)
    out["shots"] = sorted({k for c in out["curves"].values() for k in c["shots"]})
    return out
