"""Score one trained head on its run's test split, with all cached frames or a subset of them."""
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from cache.reader import CacheReader
from evaluate import metrics as M
from evaluate.runs import Run, RunError
from train.data import SpillRows
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


def test_frames(reader: CacheReader, rows: np.ndarray) -> SpillRows:
    """[T, N, D] float16 frames of `rows` (in that order) in an unlinked temporary file, read back block
    by block. Read in cache order, 4 batches at a time (contiguous runs of the cache), and put in place."""
    from train.data import read_rows
    out = SpillRows((len(rows), reader.frames, reader.dim), np.float16, "test-frames", beside=reader.path)
    by_row = np.argsort(rows, kind="stable")                  # [T] positions in cache-row order
    for s in range(0, len(rows), 4 * BATCH):
        pos = by_row[s:s + 4 * BATCH]
        out.write_rows(pos, read_rows(reader, rows[pos]))
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
        # float16 as cached, in a temporary file written once per split and shared by the heads on it,
        # read back a batch at a time: the test frames never count towards the report's memory.
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

    def _batches(self, frames: Optional[np.ndarray]) -> Iterator[Tuple[int, np.ndarray]]:
        """(first row, [b, k, D] float32) over the test videos, read into one reused buffer."""
        buf = np.empty((BATCH,) + tuple(self.emb.shape[1:]), np.float16)
        for s in range(0, len(self.rows), BATCH):
            emb = self.emb.read(s, s + BATCH, buf)                           # [b, N, D]
            yield s, as_float32(emb if frames is None else emb[:, frames])

    def rank_scores(self, frames: Optional[np.ndarray] = None, keep_logits: bool = False
                    ) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """(ahead [T], predicted [T], logits [T, C'] or None) with the frame rows in `frames` (all when None).

        ahead: how many candidates rank above the true class (a top-k hit when < k; never a hit when the
        true class is no candidate); predicted: the argmax as a cache class index (ties: the first
        candidate). One batch of logits at a time: only `keep_logits` holds all of them."""
        ahead = np.full(len(self.rows), np.iinfo(np.int64).max, np.int64)
        pred = np.zeros(len(self.rows), np.int64)
        kept = []
        for s, x in self._batches(frames):
            logits = np.asarray(self.method.logits(x, self.text), np.float32)   # [b, C']
            truth = self.truth_cand[s:s + len(x)]
            ok = truth >= 0
            ahead[s:s + len(x)][ok] = M.truth_ahead(logits[ok], truth[ok])
            pred[s:s + len(x)] = self.cand_idx[logits.argmax(1)]
            if keep_logits:
                kept.append(logits)
        if not keep_logits:
            return ahead, pred, None
        return ahead, pred, np.concatenate(kept) if kept else np.zeros((0, len(self.candidates)), np.float32)

    @staticmethod
    def hits(ahead: np.ndarray, k: int) -> np.ndarray:
        """[T] bool: the true class is among the top k (ahead from rank_scores)."""
        return ahead < k

    def video_embeddings(self) -> np.ndarray:
        """[T, D] joint-space embeddings of the test videos, unit length."""
        out = [np.asarray(self.method.video_embeddings(x), np.float32) for _, x in self._batches(None)]
        return M.l2_normalise(np.concatenate(out)) if out else np.zeros((0, self.emb.shape[-1]), np.float32)
