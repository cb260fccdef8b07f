"""Cross-dataset evaluation: score a head on a cache it was not trained on, over the classes it knows."""
import os
from typing import Optional

import numpy as np

from cache.reader import CacheReader
from clipvid.names import class_key, name_index
from evaluate import metrics as M
from evaluate.heads import HeadScorer, test_frames
from evaluate.runs import Run, RunError
from train.splits import id_order


def is_cross_dataset(run: Run, reader: CacheReader) -> bool:
    """True when the run was trained on another cache: the cache it recorded is another file that still
    exists, or (that file gone) none of its test videos is here. Ids alone cannot tell: two folders
    rendered the same way share file names."""
    trained_on = run.metrics.get("cache")
    if isinstance(trained_on, str) and os.path.exists(trained_on):
        try:
            return not os.path.samefile(trained_on, reader.path)
        except OSError:
            return True
    test = run.split.get("test") or []
    ids = set(map(str, reader.ids))
    return bool(test) and not any(vid in ids for vid in test)


class CrossScorer(HeadScorer):
    """HeadScorer's interface over every labelled video of a foreign cache whose class the head knows.

    The candidates are all the head's classes, scored against the class text embeddings it was trained
    with (kept in its checkpoint or its training cache); when those are gone, the classes it shares with
    this cache, scored against this cache's text. Never numbers from another cache's files.
    """

    def __init__(self, run: Run, reader: CacheReader, device: str = "auto", shared: Optional[dict] = None):
        from train.api import load_head
        from train.checkpoint import CheckpointError
        try:
            head = load_head(run.path, device)
        except (CheckpointError, OSError, RuntimeError, KeyError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise RunError(f"cannot load the head (cross-dataset, so no stored numbers are used): {reason}")
        if head.fingerprint != reader.fingerprint:
            info = head.cache_info
            raise RunError(f"made for another cache in another embedding space (CLIP {info.get('clip_model')!r}, "
                           f"N={info.get('frames')}) than {reader.path} ({reader.clip_model!r}, N={reader.frames})")
        self.method, self.run = head.method, run
        cache_names = [str(n) for n in reader.class_names]
        index = name_index(cache_names)
        if head.text_emb is not None or not head.scores_any_text:
            self.candidates = list(head.class_names)
            text = head.text_emb if head.text_emb is not None else np.zeros((len(self.candidates), reader.dim))
            self.text_source = head.text_source if head.text_emb is not None else "its own weights"
        else:
            self.candidates = [n for n in head.class_names if class_key(n) in index]
            text = np.asarray(reader.text_emb, np.float32)[[index[class_key(n)] for n in self.candidates]]
            self.text_source = "this cache's text embeddings (shared classes only)"
        self.text = M.l2_normalise(np.asarray(text, np.float32))                        # [C', D]
        self.cand_idx = np.array([index.get(class_key(n), -1) for n in self.candidates], np.int64)  # -1: lacks it
        known = {class_key(n) for n in self.candidates}
        labels = reader.labels
        rows = np.array([i for i in range(reader.num_videos)
                         if labels[i] >= 0 and class_key(cache_names[labels[i]]) in known], np.int64)
        self.rows = rows[id_order(reader.ids[rows])]     # [T] in video-id order, as evaluate.heads.test_rows
        self.emb = test_frames(reader, self.rows)                                  # [T, N, D] float16, on disk
        self.truth = labels[self.rows].astype(np.int64)                            # [T] cache class index
        pos = {c: j for j, c in enumerate(self.cand_idx) if c >= 0}
        self.truth_cand = np.array([pos.get(t, -1) for t in self.truth], np.int64)
