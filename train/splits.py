"""Train/val/test splits (the cache's split column, or stratified with a seed) and open-set class choice."""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from clipvid.names import class_key, name_index

SPLIT_NAMES = ("train", "val", "test")
TEST_FRACTION = 0.2   # of each class, when the cache has no split column
VAL_FRACTION = 0.2    # of each class's training part
# Spellings seen in UCF-101 / Kinetics / HMDB annotation files; "" means the row has no split.
_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
            "validate": "val", "dev": "val", "test": "test", "testing": "test", "": ""}


def id_order(ids: Sequence[str]) -> np.ndarray:
    """[V] the positions of `ids` sorted by id: an order that does not depend on the order extraction
    happened to write the videos in (Dask finishes videos in a different order each run)."""
    return np.argsort(np.asarray(ids, dtype=object), kind="stable")


def id_rank(ids: Sequence[str]) -> np.ndarray:
    """[V] each row's position when the videos are sorted by id (the inverse of id_order)."""
    rank = np.empty(len(ids), np.int64)
    rank[id_order(ids)] = np.arange(len(ids))
    return rank


def by_id(rows: np.ndarray, rank: Optional[np.ndarray]) -> np.ndarray:
    """`rows` reordered by video id (unchanged without a rank)."""
    rows = np.asarray(rows, np.int64)
    return rows if rank is None else rows[np.argsort(rank[rows], kind="stable")]


def carve(rows: np.ndarray, labels: np.ndarray, fraction: float,
          rng: np.random.Generator, rank: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Split `rows` into (kept, carved) with about `fraction` of every class carved.

    A class with fewer than 3 videos gives none away, and every class keeps at least one,
    so small classes are never missing from training. With `rank` (see id_rank) the draw depends on
    the videos, not on their cache rows, so a re-extracted cache gets the same split.
    """
    kept: List[np.ndarray] = []
    carved: List[np.ndarray] = []
    for c in np.unique(labels[rows]):
        members = by_id(rows[labels[rows] == c], rank)
        members = members[rng.permutation(len(members))]
        n = len(members)
        count = 0 if n < 3 else min(n - 1, max(1, int(round(n * fraction))))
        carved.append(members[:count])
        kept.append(members[count:])
    cat = (lambda parts: np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, np.int64))
    return cat(kept), cat(carved)


def few_shot_rows(rows: np.ndarray, labels: np.ndarray, k: int, seed: int,
                  rank: Optional[np.ndarray] = None) -> np.ndarray:
    """Sorted rows holding `k` videos of every class among `rows` (all of a class with fewer).

    One seed draws one order per class, so the k-shot set is inside the 2k-shot set of the same seed
    (the curve's points differ by the videos added, not by a fresh draw); `rank` makes the draw follow
    the video ids, not the cache's row order.
    """
    rng = np.random.default_rng(seed)
    rows = np.asarray(rows, np.int64)
    picked = [np.zeros(0, np.int64)]
    for c in np.unique(labels[rows]):
        members = by_id(rows[labels[rows] == c], rank)
        picked.append(members[rng.permutation(len(members))][:k])
    return np.sort(np.concatenate(picked))


def normalise_split_names(column: Sequence[str]) -> np.ndarray:
    """Map each row's split string to train/val/test/"" ; raises ValueError on an unknown value."""
    out = []
    for value in column:
        key = str(value).strip().lower()
        if key not in _ALIASES:
            raise ValueError(f"unknown split value {value!r} in /videos/split (use train, val or test)")
        out.append(_ALIASES[key])
    return np.array(out, dtype=object)


def make_splits(column: Sequence[str], labels: np.ndarray, seed: int,
                rank: Optional[np.ndarray] = None) -> Tuple[Dict[str, np.ndarray], str]:
    """Row indices per split (each sorted by row) over the labelled videos, and how they were made
    ("column" or "stratified").

    With a split column, rows without a value train; a missing val (or test) part is carved from
    train, stratified. Without one, test and then val are carved from everything. `rank` (id_rank)
    makes the carving follow the video ids rather than the cache's row order.
    """
    rng = np.random.default_rng(seed)
    labelled = np.flatnonzero(labels >= 0).astype(np.int64)
    names = normalise_split_names(column)[labelled] if len(column) else np.array([], dtype=object)
    if len(names) and any(names != ""):
        parts = {s: labelled[names == s] for s in ("val", "test")}
        train = labelled[(names == "train") | (names == "")]
        if not len(parts["test"]):
            train, parts["test"] = carve(train, labels, TEST_FRACTION, rng, rank)
        if not len(parts["val"]):
            train, parts["val"] = carve(train, labels, VAL_FRACTION, rng, rank)
        return {"train": train, "val": parts["val"], "test": parts["test"]}, "column"
    rest, test = carve(labelled, labels, TEST_FRACTION, rng, rank)
    train, val = carve(rest, labels, VAL_FRACTION, rng, rank)
    return {"train": train, "val": val, "test": test}, "stratified"


def choose_open_set(class_names: Sequence[str], present: Sequence[int], holdout: Optional[int],
                    train_classes: Optional[Sequence[str]], seed: int) -> Optional[Tuple[List[int], List[int]]]:
    """(seen, unseen) class indices for an open-set run, or None for a closed-set one.

    `present` are the classes that have labelled videos; only those can be seen or unseen.
    Raises ValueError when the request cannot be met.
    """
    present = sorted(int(c) for c in present)
    if holdout is None and train_classes is None:
        return None
    if train_classes is not None:
        index = name_index(class_names)
        unknown = [n for n in train_classes if class_key(n) not in index]
        if unknown:
            raise ValueError(f"class names not in the cache: {', '.join(map(repr, unknown[:5]))}"
                             + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""))
        seen = sorted({index[class_key(n)] for n in train_classes} & set(present))
    else:
        if holdout < 1 or holdout > len(present) - 2:
            raise ValueError(f"--holdout-classes must be between 1 and {len(present) - 2} "
                             f"(the cache has {len(present)} labelled classes and training needs 2)")
        rng = np.random.default_rng(seed)
        unseen_pick = set(int(c) for c in rng.choice(present, size=holdout, replace=False))
        seen = [c for c in present if c not in unseen_pick]
    unseen = [c for c in present if c not in set(seen)]
    if len(seen) < 2:
        raise ValueError(f"training needs at least 2 seen classes with videos, got {len(seen)}")
    if not unseen:
        raise ValueError("every labelled class is a training class, so nothing is left to test zero-shot")
    return seen, unseen


def restrict_to_seen(splits: Dict[str, np.ndarray], labels: np.ndarray,
                     seen: Sequence[int]) -> Dict[str, np.ndarray]:
    """Open set: train and val keep only seen-class videos; test keeps everything."""
    mask = np.isin(labels, np.asarray(seen))
    return {"train": splits["train"][mask[splits["train"]]], "val": splits["val"][mask[splits["val"]]],
            "test": splits["test"]}
