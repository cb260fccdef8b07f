"""Shared passes over the cache: one for what fitting needs, one that scores and embeds every method at once."""
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from clipvid.progress import progress as progress_display
from train.baselines import mean_over_time
from train.data import READ_BLOCK, RowSelection, SpillRows, StatsAccumulator
from train.device import one_blas_thread
from train.linear import LinearMethod
from train.method import Method, as_float32
from train.metrics import truth_ahead
from train.prepare import TrainData

PARTIAL_EMB = "video_emb.partial.npy"  # filled during the scan, so [V, D] per head never sits in RAM


def _bar(total_rows: int, desc: str, progress: bool):
    return progress_display(total=total_rows, desc=desc, unit="video", quiet=not progress, leave=False)


@dataclass
class FitInputs:
    """What the linear probe and the trained heads need from one read of the frames."""
    train_x: Optional[RowSelection] = None  # [n_train, D] mean-pooled (rows of `pooled`'s spill file)
    val_x: Optional[RowSelection] = None    # [n_val, D]
    stats: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None  # frame mean, std, dev std [D] each
    pooled: Optional[SpillRows] = None      # [V, D] time mean of every video (on disk): pooled_only methods' input


def _float32_buffer(data: TrainData) -> np.ndarray:
    """One block of frames as float32, reused by a scan for every block it converts."""
    return np.empty((READ_BLOCK, len(data.frames), data.reader.dim), np.float32)   # [b, K, D]


def fit_pass(data: TrainData, pooled: bool, stats: bool, progress: bool = True,
             every_video: bool = False) -> FitInputs:
    """Mean-pooled train/val features (of every video with `every_video`: then also `pooled`, the input
    of pooled_only methods' scoring) and/or training frame statistics, from one scan."""
    out = FitInputs()
    if not (pooled or stats):
        return out
    tr, va = data.splits["train"], data.splits["val"]
    if pooled:                                                             # cache order: contiguous reads
        rows = np.arange(data.reader.num_videos) if every_video else np.union1d(tr, va)
    else:
        rows = np.sort(tr)
    is_train = np.isin(rows, tr)
    feats = SpillRows((len(rows), data.reader.dim), np.float32, "pooled", beside=data.reader.path) if pooled else None
    acc = StatsAccumulator(data.reader.dim) if stats else None
    buf = _float32_buffer(data) if pooled else None
    bar = _bar(len(rows), "reading frames", progress)
    done = 0
    for part, block in data.source.blocks(rows):                           # block: [b, K, D] float16
        if feats is not None:
            feats.write(done, mean_over_time(as_float32(block, buf)))
        if acc is not None:
            acc.add(block[is_train[done:done + len(part)]])
        done += len(part)
        bar.update(len(part))
    bar.close()
    if feats is not None:
        out.train_x = RowSelection(feats, np.searchsorted(rows, tr))
        out.val_x = RowSelection(feats, np.searchsorted(rows, va))
        out.pooled = feats if every_video else None
    if acc is not None:
        out.stats = acc.result()
    return out


@dataclass
class Scored:
    """One method's share of the scoring scan, per scored part (name -> one value per row of the part):
    `ahead`, how many candidate classes rank above the true one (metrics.truth_ahead: top-k hit when < k),
    `pred`, the argmax candidate, and `confidence`, the method's probability of it. What the metrics and
    predictions.csv need, kept instead of [rows, classes] logits, which grow with the split."""
    ahead: Dict[str, np.ndarray] = field(default_factory=dict)
    pred: Dict[str, np.ndarray] = field(default_factory=dict)
    confidence: Dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0

    def keep(self, part: str, at: np.ndarray, method: Method, logits: np.ndarray, truth: np.ndarray) -> None:
        """Summarise one block's logits [b, C] of rows `at` of `part` (their true candidates `truth`)."""
        # Row-major float32, as a [rows, C] table held them: a column-picked block is column-major, and
        # the softmax's row sums would then add in another order (1e-7 apart).
        logits = np.ascontiguousarray(logits, np.float32)
        pred = logits.argmax(axis=1)
        self.ahead[part][at] = truth_ahead(logits, truth)
        self.pred[part][at] = pred
        self.confidence[part][at] = method.probabilities(logits)[np.arange(len(pred)), pred]


def score_parts(data: TrainData) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """part name -> (cache rows, candidate classes): val over the training classes, test over all,
    and in an open-set run the unseen test videos among the unseen names only (the classic zero-shot)."""
    every = np.arange(len(data.class_names))
    parts = {"val": (data.splits["val"], data.train_classes), "test": (data.splits["test"], every)}
    if data.seen is not None:
        test = data.splits["test"]
        unseen = test[~np.isin(data.labels[test], data.seen)]
        parts["test_unseen_zeroshot"] = (unseen, np.asarray(data.unseen, np.int64))
    return parts


def _new_emb_file(run_dir: str, shape: Tuple[int, int]) -> SpillRows:
    return SpillRows(shape, np.float32, path=os.path.join(run_dir, PARTIAL_EMB))


def score_pass(methods: List[Method], data: TrainData, run_dirs: Optional[List[str]], progress: bool = True,
               pooled: Optional[SpillRows] = None) -> Tuple[List[Scored], List[SpillRows], float]:
    """One sequential read of every video: each method's video embeddings (into RUN/video_emb.partial.npy,
    closed when the scan ends) and its scores (see Scored) for every scored part. pooled_only methods score from `pooled` ([V, D] time means,
    when a fit pass made them), so a group of only those reads no frames at all.
    -> (scores per method, embedding arrays, read seconds).

    Without run_dirs only the scored parts' videos are read and no embeddings are kept."""
    V, D = data.reader.num_videos, data.reader.dim
    parts = score_parts(data)
    wanted = None if run_dirs is not None else np.unique(np.concatenate([r for r, _ in parts.values()]))
    # Where each part's rows sit in the scan: sorted once so every block finds its members by bisection.
    lookup = {name: (np.argsort(rows, kind="stable"), np.sort(rows)) for name, (rows, _) in parts.items()}
    truths = {n: np.searchsorted(c, data.labels[rows]) for n, (rows, c) in parts.items()}  # candidate index
    scored = [Scored({n: np.zeros(len(r), np.int64) for n, (r, _) in parts.items()},
                     {n: np.zeros(len(r), np.int64) for n, (r, _) in parts.items()},
                     {n: np.zeros(len(r), np.float32) for n, (r, _) in parts.items()}) for _ in methods]
    embs = [_new_emb_file(d, (V, D)) for d in run_dirs] if run_dirs is not None else [None] * len(methods)
    text = {n: np.asarray(data.text_emb[c], np.float32) for n, (_, c) in parts.items()}
    # A linear probe scores its own (= the cache's) classes; the scan keeps the candidates' columns.
    own = [isinstance(m, LinearMethod) for m in methods]
    texts = [{n: data.text_emb if o else text[n] for n in parts} for o in own]
    use_pooled = [pooled is not None and m.pooled_only for m in methods]
    every = np.arange(V) if wanted is None else wanted
    buf = None
    if all(use_pooled):
        blocks = ((every[s:s + READ_BLOCK], None) for s in range(0, len(every), READ_BLOCK))
    else:
        blocks, buf = data.source.blocks(wanted, READ_BLOCK), _float32_buffer(data)
    bar = _bar(len(every), "scoring " + ",".join(m.name for m in methods), progress)
    read_start = time.perf_counter()
    with one_blas_thread():
        for rows, block in blocks:                                         # block: [b, K, D] float16
            x = None if block is None else as_float32(block, buf)          # once for every method
            lo, hi = int(rows[0]), int(rows[-1]) + 1
            here = {}
            for name, (order, sorted_rows) in lookup.items():
                a, b = np.searchsorted(sorted_rows, [lo, hi])
                if b > a:                                                  # (index into part, into block)
                    here[name] = (order[a:b], np.searchsorted(rows, sorted_rows[a:b]))
            for method, out, emb, part_text, from_pooled, wide in zip(methods, scored, embs, texts, use_pooled,
                                                                      own):
                t = time.perf_counter()
                picks = {name: (pick, part_text[name]) for name, (_, pick) in here.items()}
                if from_pooled:
                    video, logits = method.score_pooled(pooled[rows], picks)
                else:
                    video, logits = method.embed_and_score(x, picks)
                if emb is not None:
                    emb.write(lo, video)
                for name, (at, _) in here.items():
                    part_logits = logits[name][:, parts[name][1]] if wide else logits[name]
                    out.keep(name, at, method, part_logits, truths[name][at])
                out.seconds += time.perf_counter() - t
            bar.update(len(rows))
    bar.close()
    for emb in embs:
        if emb is not None:
            emb.close()
    read_seconds = time.perf_counter() - read_start - sum(s.seconds for s in scored)
    return scored, embs, max(read_seconds, 0.0)
