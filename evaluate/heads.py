"""Score one trained head on its run's test split, with all cached frames or a subset of them."""
from typing import Dict, List, Optional

import numpy as np

from cache.reader import CacheReader
from evaluate import metrics as M
from evaluate.runs import Run, RunError
from evaluate.video_emb import release
from train.method import as_float32
from train.splits import id_order

BATCH = 256  # videos per forward pass: bounds memory on large test splits


def test_rows(reader: CacheReader, run: Run) -> np.ndarray:
    """Cache rows [T] of the run's labelled test videos, in video-id order: every per-video array of a
    head (hits, predictions, logits) follows it, so a bootstrap resampling their positions draws the
    same videos from any cache of them, whatever order extraction wrote the rows in."""
    wanted = set(run.split.get("test", []))
    rows = np.array([i for i, vid in enumerate(reader.ids) if vid in wanted and reader.labels[i] >= 0], np.int64)
    return rows[id_order(reader.ids[rows])]


def test_frames(reader: CacheReader, rows: np.ndarray) -> np.ndarray:
    """[T, N, D] float16 frames of `rows` (in that order) in an anonymous memory-mapped temporary file.

    Read in cache order, 4 batches at a time (contiguous runs of the file), and put in place."""
    from train.data import read_rows, temp_array
    shape = (len(rows), reader.frames, reader.dim)
    if not len(rows):
        return np.zeros(shape, np.float16)
    out = temp_array(shape, np.float16, "test-frames")
    by_row = np.argsort(rows, kind="stable")                  # [T] positions in cache-row order
    for s in range(0, len(rows), 4 * BATCH):
        pos = by_row[s:s + 4 * BATCH]
        out[pos] = read_rows(reader, rows[pos])
    out.flush()
    release(out)
    return out


class HeadScorer:
    """A loaded head plus its test videos; answers per-video hits for any number of frames."""

    def __init__(self, run: Run, reader: CacheReader, device: str = "auto", shared: Optional[Dict] = None):
        from train.api import load_method  # train is only needed once a report has runs
        from train.checkpoint import CheckpointError
        try:
            self.method = load_method(run.path, reader=reader, device=device)
        except (CheckpointError, OSError, RuntimeError, KeyError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise RunError(f"cannot load the head: {reason}")
        self.run = run
        self.rows = test_rows(reader, run)                                   # [T]
        # float16 as cached, in a temporary file read once per split and shared by the heads on it,
        # so the test frames never count towards the report's memory however large the split is.
        shared = {} if shared is None else shared
        key = self.rows.tobytes()
        if key not in shared:
            shared[key] = test_frames(reader, self.rows)
        self.emb = shared[key]                                               # [T, N, D] float16
        self.truth = reader.labels[self.rows].astype(np.int64)               # [T] cache class index
        self.candidates = self._candidates(reader)
        index = {n: i for i, n in enumerate(reader.class_names)}
        missing = [n for n in self.candidates if n not in index]
        if missing:
            raise RunError(f"{run.path}: head knows classes the cache lacks: {', '.join(missing[:5])}")
        self.cand_idx = np.array([index[n] for n in self.candidates], np.int64)  # [C'] -> cache class
        self.text = M.l2_normalise(reader.text_emb[self.cand_idx])               # [C', D]
        pos = {c: j for j, c in enumerate(self.cand_idx)}
        self.truth_cand = np.array([pos.get(t, -1) for t in self.truth], np.int64)  # [T], -1: not a candidate

    def _candidates(self, reader: CacheReader) -> List[str]:
        names = list(self.method.class_names)
        unseen = (self.run.open_set or {}).get("unseen") or []
        # A linear probe only scores the classes it was trained on; every other head scores any text,
        # so on an open-set run the held-out classes are candidates too (generalised zero-shot).
        if self.method.scores_any_text:
            names += [n for n in unseen if n not in names]
        return names

    def logits(self, frames: Optional[np.ndarray] = None) -> np.ndarray:
        """[T, C'] scores over the candidate classes, using the frame rows in `frames` (all when None)."""
        out = []
        for s in range(0, len(self.rows), BATCH):
            emb = self.emb[s:s + BATCH] if frames is None else self.emb[s:s + BATCH][:, frames]
            emb = as_float32(emb)                                            # [b, k, D]
            out.append(np.asarray(self.method.logits(emb, self.text), np.float32))
        release(self.emb)
        return np.concatenate(out) if out else np.zeros((0, len(self.candidates)), np.float32)

    def hits(self, logits: np.ndarray, k: int) -> np.ndarray:
        """[T] bool: the true class is among the top k (never, when it is not a candidate)."""
        ok = self.truth_cand >= 0
        out = np.zeros(len(self.truth), bool)
        out[ok] = M.topk_correct(logits[ok], self.truth_cand[ok], k)
        return out

    def predicted(self, logits: np.ndarray) -> np.ndarray:
        """[T] predicted cache class index (argmax; ties go to the first candidate)."""
        return self.cand_idx[logits.argmax(1)] if len(logits) else np.zeros(0, np.int64)

    def video_embeddings(self) -> np.ndarray:
        """[T, D] joint-space embeddings of the test videos, unit length."""
        out = [np.asarray(self.method.video_embeddings(as_float32(self.emb[s:s + BATCH])), np.float32)
               for s in range(0, len(self.rows), BATCH)]
        release(self.emb)
        return M.l2_normalise(np.concatenate(out)) if out else np.zeros((0, self.emb.shape[-1]), np.float32)
