"""Write a head's run folder: metrics.json, predictions.csv, split.json and video_emb.npy."""
import csv
import json
import math
import os
from typing import Any, Dict, Sequence

import numpy as np

METRICS_NAME = "metrics.json"
PREDICTIONS_NAME = "predictions.csv"
SPLIT_NAME = "split.json"
VIDEO_EMB_NAME = "video_emb.npy"


def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars become numbers, NaN/inf become null (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _atomic_text(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path: str, data: Dict[str, Any]) -> None:
    """Indented UTF-8 JSON, replaced atomically so a reader never sees half a file."""
    _atomic_text(path, json.dumps(jsonable(data), indent=2, ensure_ascii=False) + "\n")


def write_split(run_dir: str, ids: Sequence[str], splits: Dict[str, np.ndarray]) -> None:
    """split.json: the video ids of every split, in cache order."""
    write_json(os.path.join(run_dir, SPLIT_NAME),
               {name: [str(ids[i]) for i in splits[name]] for name in ("train", "val", "test")})


def write_predictions(run_dir: str, ids: Sequence[str], true: Sequence[str], predicted: Sequence[str],
                      scores: Sequence[float]) -> None:
    """predictions.csv (id,true,predicted,score) via the csv module, so any id survives quoting."""
    path = os.path.join(run_dir, PREDICTIONS_NAME)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["id", "true", "predicted", "score"])
        for row in zip(ids, true, predicted, scores):
            out.writerow([row[0], row[1], row[2], f"{float(row[3]):.6f}"])
    os.replace(tmp, path)


def write_video_emb(run_dir: str, emb: np.ndarray) -> None:
    """video_emb.npy: [V, D] float32, one row per cached video in cache order."""
    path = os.path.join(run_dir, VIDEO_EMB_NAME)
    tmp = f"{path}.tmp-{os.getpid()}.npy"
    np.save(tmp, np.asarray(emb, np.float32))
    os.replace(tmp, path)
