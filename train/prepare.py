"""Open a cache for training: check it is usable, load frames, make splits and the open-set class choice."""
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from clipvid.errors import CacheError, UsageError
from cache.reader import CacheReader, open_cache
from train.data import FrameSource, frame_subset
from train.splits import choose_open_set, id_rank, make_splits, restrict_to_seen

MIN_PER_SPLIT = {"train": 2, "test": 1}


@dataclass
class TrainData:
    """Everything the heads train and are scored on, from one cache."""
    path: str
    reader: CacheReader
    source: FrameSource
    frames: np.ndarray                 # [K] row indices of the N cached ones
    labels: np.ndarray                 # [V] class index, -1 unlabelled
    class_names: List[str]
    text_emb: np.ndarray               # [C, D] float32
    splits: Dict[str, np.ndarray]      # split -> row indices
    split_source: str                  # "column" or "stratified"
    seen: Optional[List[int]] = None   # open set: classes trained on
    unseen: Optional[List[int]] = None  # open set: classes held out
    rank: Optional[np.ndarray] = None  # [V] position of each video in id order (splits.id_rank)

    @property
    def train_classes(self) -> np.ndarray:
        """Candidate classes while training and validating: the seen ones, or all."""
        return np.asarray(self.seen if self.seen is not None else range(len(self.class_names)), np.int64)

    @property
    def fingerprint(self) -> str:
        return self.reader.fingerprint

    def cache_info(self) -> Dict[str, object]:
        # weights_hash and the cache's path let `predict` extract new videos the same way and find
        # the class text embeddings again; older checkpoints lack them and fall back (train.head).
        return {"clip_model": self.reader.clip_model, "frames": self.reader.frames, "dim": self.reader.dim,
                "random_weights": self.reader.random_weights,
                "weights_hash": str(self.reader.settings.get("weights_hash", "")),
                "cache": os.path.abspath(self.path)}


def _check_labels(path: str, labels: np.ndarray, num_classes: int) -> List[int]:
    labelled = labels[labels >= 0]
    if len(labelled) and labelled.max() >= num_classes:
        raise CacheError(path, f"damaged cache: label {int(labelled.max())} but only {num_classes} classes")
    present = sorted(int(c) for c in np.unique(labelled))
    if len(present) < 2:
        raise CacheError(path, f"training needs labelled videos of at least 2 classes; this cache has "
                               f"{len(labelled)} labelled videos in {len(present)} class(es)")
    return present


def _check_splits(path: str, splits: Dict[str, np.ndarray], labels: np.ndarray) -> None:
    for name, least in MIN_PER_SPLIT.items():
        if len(splits[name]) < least:
            counts = np.bincount(labels[labels >= 0])
            raise CacheError(path, f"too few labelled videos to train and test: the {name} split would hold "
                                   f"{len(splits[name])} (smallest class has {counts[counts > 0].min()} videos; "
                                   f"give each class at least 3)")
    if len(np.unique(labels[splits["train"]])) < 2:
        raise CacheError(path, "the train split holds videos of fewer than 2 classes")


def prepare(path: str, frames: Optional[int], seed: int, holdout: Optional[int] = None,
            train_classes: Optional[Sequence[str]] = None, budget: Optional[int] = None) -> TrainData:
    """Open and check `path`; raises CacheError (unusable cache) or UsageError (impossible request)."""
    reader = open_cache(path)
    try:
        if frames is not None and not 1 <= frames <= reader.frames:
            raise UsageError(f"--frames must be between 1 and {reader.frames} (the cache's rows per video), "
                             f"got {frames}")
        names = [str(n) for n in reader.class_names]
        text = np.asarray(reader.text_emb, np.float32)
        if text.shape != (len(names), reader.dim):
            raise CacheError(path, f"damaged cache: text embeddings {text.shape} for {len(names)} classes")
        present = _check_labels(path, reader.labels, len(names))
        try:
            open_set = choose_open_set(names, present, holdout, train_classes, seed)
        except ValueError as exc:  # the request does not fit this cache's classes
            raise UsageError(str(exc))
        try:
            rank = id_rank(reader.ids)
            splits, how = make_splits(reader.splits, reader.labels, seed, rank)
        except ValueError as exc:  # the cache's split column is unusable
            raise CacheError(path, str(exc))
        seen = unseen = None
        if open_set is not None:
            seen, unseen = open_set
            splits = restrict_to_seen(splits, reader.labels, seen)
        _check_splits(path, splits, reader.labels)
        source = FrameSource(reader, frame_subset(reader.frames, frames), budget)
    except BaseException:
        reader.close()
        raise
    return TrainData(path, reader, source, source.frames, reader.labels, names, text, splits, how, seen, unseen,
                     rank)
