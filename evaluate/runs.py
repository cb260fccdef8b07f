"""Find and read the run folders the training stage writes (metrics, split, predictions, embeddings)."""
import csv
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from train.checkpoint import CHECKPOINT_NAME
from train.outputs import METRICS_NAME, PREDICTIONS_NAME, SPLIT_NAME, VIDEO_EMB_NAME, group_of
from train.registry import ALL_METHODS as HEAD_ORDER  # baselines first, as in the design


@dataclass
class Run:
    """One head's run folder as written by `python -m train`."""
    name: str
    path: str
    metrics: Dict[str, Any]
    split: Dict[str, List[str]]
    predictions: List[Dict[str, str]] = field(default_factory=list)
    video_emb: Optional[np.ndarray] = None      # [V, D] in cache row order, when present
    notes: List[str] = field(default_factory=list)

    @property
    def head(self) -> str:
        return str(self.metrics.get("head") or self.name)

    @property
    def history(self) -> List[Dict[str, Any]]:
        return list(self.metrics.get("history") or [])

    @property
    def open_set(self) -> Optional[Dict[str, List[str]]]:
        return self.metrics.get("open_set") or None

    @property
    def seconds(self) -> Optional[float]:
        s = self.metrics.get("seconds")
        return float(s) if isinstance(s, (int, float)) else None


class RunError(ValueError):
    """A run folder that cannot be used; the message says which file and why."""


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise RunError(f"{path}: missing")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{path}: not readable JSON ({str(exc).splitlines()[0]})")


def _read_predictions(path: str) -> List[Dict[str, str]]:
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"id", "true", "predicted"} <= set(rows[0]):
        raise RunError(f"{path}: expected columns id,true,predicted,score")
    return rows


def read_run(path: str, num_videos: Optional[int] = None) -> Run:
    """Read one run folder; raises RunError naming the bad file."""
    metrics = _read_json(os.path.join(path, METRICS_NAME))
    if not isinstance(metrics, dict):
        raise RunError(f"{os.path.join(path, METRICS_NAME)}: not a JSON object")
    split_name = metrics.get("split") or SPLIT_NAME
    split = _read_json(os.path.join(path, os.path.basename(str(split_name))))
    if not isinstance(split, dict) or not isinstance(split.get("test"), list):
        raise RunError(f"{os.path.join(path, SPLIT_NAME)}: no test list")
    run = Run(os.path.basename(os.path.normpath(path)), path, metrics,
              {k: [str(x) for x in v] for k, v in split.items() if isinstance(v, list)})
    try:
        run.predictions = _read_predictions(os.path.join(path, PREDICTIONS_NAME))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        run.notes.append(f"{PREDICTIONS_NAME} unreadable: {exc}")
    emb_path = os.path.join(path, VIDEO_EMB_NAME)
    if os.path.exists(emb_path):
        try:
            # Mapped, not read: a report touches one head's [V, D] at a time (evaluate.video_emb.release).
            emb = np.load(emb_path, mmap_mode="r", allow_pickle=False)
            if emb.ndim != 2 or (num_videos is not None and emb.shape[0] != num_videos):
                run.notes.append(f"{VIDEO_EMB_NAME} has shape {emb.shape}, expected ({num_videos}, D); not used")
            else:
                run.video_emb = emb if emb.dtype == np.float32 else emb.astype(np.float32)
        except (OSError, ValueError) as exc:
            run.notes.append(f"{VIDEO_EMB_NAME} unreadable: {str(exc).splitlines()[0]}")
    return run


def _sort_key(run: Run) -> Tuple[int, str]:
    return (HEAD_ORDER.index(run.head) if run.head in HEAD_ORDER else len(HEAD_ORDER), run.name)


def _is_run(path: str) -> bool:
    return os.path.exists(os.path.join(path, METRICS_NAME)) or os.path.exists(os.path.join(path, CHECKPOINT_NAME))


def run_folders(runs_dir: str) -> List[str]:
    """`runs_dir` itself when it is one run folder, else every run folder below it at any depth."""
    if _is_run(runs_dir):
        return [runs_dir]
    found = []
    for dirpath, dirnames, _ in os.walk(runs_dir):
        dirnames.sort()
        if dirpath != runs_dir and _is_run(dirpath):
            found.append(dirpath)
            dirnames[:] = []  # a run folder's sub-folders are its own files, not more runs
    return found


def find_runs(runs_dir: str, num_videos: Optional[int] = None) -> Tuple[List[Run], List[str]]:
    """Every readable run in or below `runs_dir`, named by its path below it, and a warning per broken folder."""
    runs, warnings = [], []
    for path in run_folders(runs_dir):
        rel = os.path.relpath(path, runs_dir)
        entry = os.path.basename(os.path.normpath(path)) if rel == "." else rel
        try:
            run = read_run(path, num_videos)
        except RunError as exc:
            warnings.append(f"skipped run {entry}: {exc}")
            continue
        run.name = entry
        runs.append(run)
    return sorted(runs, key=_sort_key), warnings


def group_name(run: Run, runs_dir: str) -> str:
    """The <head>-<settings> folder of a run (its seeds are pooled in the report), relative to runs_dir."""
    rel = os.path.relpath(group_of(run.path), runs_dir)
    return run.name if rel in (".", "") or rel.startswith("..") else rel
