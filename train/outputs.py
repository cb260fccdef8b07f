"""Run folders: names (RUNS/<head>-<settings>/seed<k>/) and files (metrics, predictions, split, embeddings + ids)."""
import csv
import hashlib
import json
import os
import re
from typing import Any, Dict, Optional, Sequence

import numpy as np

from clipvid.atomic import AtomicFile
from clipvid.jsonfile import write_json

METRICS_NAME = "metrics.json"
PREDICTIONS_NAME = "predictions.csv"
SPLIT_NAME = "split.json"
VIDEO_EMB_NAME = "video_emb.npy"
VIDEO_EMB_META = "video_emb.json"    # which cache rows video_emb.npy holds
VIDEO_IDS_NAME = "video_ids.json"    # their ids, in row order
VIDEO_EMB_FORMAT = "clipvid-video-emb"
SEED_DIR = re.compile(r"^seed(-?\d+)$")  # RUNS/<head>-<settings>/seed<k>/


def settings_tag(head: str, frames: int, epochs: Optional[int] = None, lr: Optional[float] = None,
                 holdout: Optional[int] = None, train_classes: Optional[Sequence[str]] = None,
                 split_seed: int = 0) -> str:
    """'<head>-f<K>[-e<E>-lr<LR>][-hold<H>|-classes<hash>][-split<S>]': what makes two runs comparable.

    Epochs and learning rate only name trained heads (baselines and the probe have neither);
    the open-set choice and a non-default split seed change the test set, so they name the folder too.
    """
    parts = [head, f"f{int(frames)}"]
    if epochs is not None:
        parts.append(f"e{int(epochs)}")
    if lr is not None:
        parts.append(f"lr{lr:g}")
    if holdout is not None:
        parts.append(f"hold{int(holdout)}")
    if train_classes is not None:
        digest = hashlib.sha256("\n".join(sorted(train_classes)).encode("utf-8")).hexdigest()[:8]
        parts.append(f"classes{digest}")
    if split_seed:
        parts.append(f"split{int(split_seed)}")
    return "-".join(parts)


def run_dir_for(out_root: str, tag: str, seed: int) -> str:
    """RUNS/<tag>/seed<k>: one folder per settings, one sub-folder per training seed."""
    return os.path.join(out_root, tag, f"seed{int(seed)}")


def group_of(run_path: str) -> str:
    """The settings folder a run belongs to: the parent of a seed<k> folder, else the folder itself."""
    path = os.path.normpath(run_path)
    return os.path.dirname(path) if SEED_DIR.match(os.path.basename(path)) else path


def write_split(run_dir: str, ids: Sequence[str], splits: Dict[str, np.ndarray]) -> None:
    """split.json: the video ids of every split, in cache order."""
    write_json(os.path.join(run_dir, SPLIT_NAME),
               {name: [str(ids[i]) for i in splits[name]] for name in ("train", "val", "test")})


def write_predictions(run_dir: str, ids: Sequence[str], true: Sequence[str], predicted: Sequence[str],
                      scores: Sequence[float]) -> None:
    """predictions.csv (id,true,predicted,score) via the csv module, so any id survives quoting."""
    with AtomicFile(os.path.join(run_dir, PREDICTIONS_NAME)) as f:
        out = csv.writer(f)
        out.writerow(["id", "true", "predicted", "score"])
        for row in zip(ids, true, predicted, scores):
            out.writerow([row[0], row[1], row[2], f"{float(row[3]):.6f}"])


def ids_digest(ids: Sequence[str]) -> str:
    """sha256 of the ids in order: names the exact rows an embedding file holds, cheaply."""
    return hashlib.sha256("\0".join(map(str, ids)).encode("utf-8", "surrogatepass")).hexdigest()


def write_video_emb(run_dir: str, emb: np.ndarray, ids: Sequence[str], fingerprint: str) -> None:
    """video_emb.npy: [V, D] float32 (memory-mappable), one row per cached video in cache order;
    video_emb.json: the cache fingerprint, the row count and a digest of the ids; video_ids.json: the ids."""
    if len(emb) != len(ids):
        raise ValueError(f"{len(emb)} video embeddings for {len(ids)} ids")
    path = os.path.join(run_dir, VIDEO_EMB_NAME)
    tmp = f"{path}.tmp-{os.getpid()}.npy"
    np.save(tmp, np.asarray(emb, np.float32))
    publish_video_emb(run_dir, tmp, ids, fingerprint)


def publish_video_emb(run_dir: str, npy: str, ids: Sequence[str], fingerprint: str) -> None:
    """write_video_emb for a finished [V, D] float32 .npy file already on disk (moved, not copied)."""
    shape = np.load(npy, mmap_mode="r").shape
    if shape[0] != len(ids):
        raise ValueError(f"{shape[0]} video embeddings for {len(ids)} ids")
    os.replace(npy, os.path.join(run_dir, VIDEO_EMB_NAME))
    write_json(os.path.join(run_dir, VIDEO_IDS_NAME), [str(i) for i in ids], indent=None)
    write_json(os.path.join(run_dir, VIDEO_EMB_META),
               {"format": VIDEO_EMB_FORMAT, "version": 1, "rows": int(len(ids)), "dim": int(shape[1]),
                "cache_fingerprint": fingerprint, "ids_sha256": ids_digest(ids)})


def read_video_emb_meta(run_dir: str) -> Optional[Dict[str, Any]]:
    """video_emb.json as written by write_video_emb, or None when missing, unreadable or of another format."""
    try:
        with open(os.path.join(run_dir, VIDEO_EMB_META), encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    ok = isinstance(meta, dict) and meta.get("format") == VIDEO_EMB_FORMAT and isinstance(meta.get("rows"), int)
    return meta if ok else None
