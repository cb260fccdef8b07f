"""Score the chosen videos of a cache block by block: top-k rows, accuracy counts and per-moment segments."""
import os
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from clipvid.progress import progress as progress_display
from clipvid.names import class_key, name_index
from cache.reader import CacheReader
from predict import outputs as O
from train.data import prefetched
from train.device import one_blas_thread, torch_threads
from train.head import Head
from train.method import as_float32
from train.metrics import mean_class_accuracy, top_k
from train.timeline import Segment, block_segments, video_duration, window_starts

BLOCK = 64  # videos per read: [64, 100, 512] float16 is 6.5 MB, and 64 x windows stays one forward batch


@dataclass(kw_only=True)
class Request:
    top: int = 5
    window: Optional[int] = None         # None: no timeline
    stride: Optional[int] = None
    page_videos: int = 0                 # how many videos the HTML page keeps (0: no page)


@dataclass
class VideoResult:
    """What the HTML page shows about one video."""
    id: str
    label: str
    ranked: List[tuple]                  # [(class name, probability)] best first
    duration: float
    segments: List[Segment] = field(default_factory=list)


@dataclass
class Outcome:
    videos: int = 0
    unlabelled: int = 0
    unknown_class: int = 0
    unknown_names: Dict[str, int] = field(default_factory=dict)
    truth: List[np.ndarray] = field(default_factory=list)      # candidate index of known labelled videos
    pred: List[np.ndarray] = field(default_factory=list)
    hit5: List[np.ndarray] = field(default_factory=list)
    segments: int = 0
    page: List[VideoResult] = field(default_factory=list)

    def accuracy(self) -> Dict[str, Any]:
        truth = np.concatenate(self.truth) if self.truth else np.zeros(0, np.int64)
        pred = np.concatenate(self.pred) if self.pred else np.zeros(0, np.int64)
        hit5 = np.concatenate(self.hit5) if self.hit5 else np.zeros(0, bool)
        if not len(truth):
            return {"n": 0, "top1": None, "top5": None, "mean_class": None}
        return {"n": int(len(truth)), "top1": float((pred == truth).mean()), "top5": float(hit5.mean()),
                "mean_class": mean_class_accuracy(pred, truth)}


def label_map(cache_names: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
    """[C_cache] -> candidate index by name, -1 where the candidates lack the class."""
    index = name_index(candidates)
    return np.array([index.get(class_key(n), -1) for n in cache_names] + [-1], np.int64)  # last: unlabelled (-1)


def _read(reader: CacheReader, block: np.ndarray, times: bool) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """One block's frames [b, N, D] as float32 (converted here, on the prefetch thread) and row times [b, N]."""
    return as_float32(reader.emb(block)), (reader.times(block) if times else None)


class _Writers:
    """predictions.csv, and with a timeline timeline.csv and the subtitles: closed whole or abandoned together."""

    def __init__(self, out_dir: str, top: int, timeline: bool):
        self.pred = O.CsvOut(os.path.join(out_dir, O.PREDICTIONS), O.predictions_header(top))
        self.line = O.CsvOut(os.path.join(out_dir, O.TIMELINE), ["id", "start_s", "end_s", "pred", "score"]) \
            if timeline else None
        self.subs = O.SubtitleWriter(out_dir) if timeline else None

    def close(self) -> None:
        for w in (self.subs, self.pred, self.line):
            if w is not None:
                w.close()

    def abandon(self) -> None:
        for w in (self.subs, self.pred, self.line):
            if w is not None:
                w.abandon()


def score_cache(reader: CacheReader, rows: np.ndarray, head: Head, text: Optional[np.ndarray],
                frame_rows: np.ndarray, names: List[str], req: Request, out_dir: str,
                progress: bool = True) -> Outcome:
    """Write predictions.csv (and timeline.csv + subtitles) for cache `rows`, scored by `head` against
    `text` (None: its own classes); the next block is read while the current one is scored."""
    top = min(req.top, len(names))
    writers = _Writers(out_dir, top, bool(req.window))
    out = Outcome()
    blocks = [rows[s:s + BLOCK] for s in range(0, len(rows), BLOCK)]
    loads = [partial(_read, reader, block, bool(req.window)) for block in blocks]
    every_row = np.array_equal(frame_rows, np.arange(reader.frames))
    try:
        bar = progress_display(total=len(rows), unit="video", desc="predict", quiet=not progress)
        # One thread for numpy's small products ([b x W, D] by [D, C]) and for torch's per-block forward
        # passes, while the next block is read and converted on the prefetch thread: several threads
        # spin-waiting on a busy machine ran them 2-10x slower (bench/PERFORMANCE.md, predict).
        with one_blas_thread(), torch_threads(1):
            for block, (emb, times) in zip(blocks, prefetched(loads)):     # emb: [b, N, D] float32
                p = head.predict(emb if every_row else emb[:, frame_rows], text)   # [b, C]
                seg_lists = _timelines(reader, block, emb, times, head, text, req) if req.window else None
                _write_block(reader, block, p, seg_lists, times, names, top, req, writers, out)
                bar.update(len(block))
        bar.close()
        writers.close()
    except BaseException:
        writers.abandon()
        raise
    return out


def _write_block(reader: CacheReader, block: np.ndarray, p: np.ndarray, seg_lists: Optional[List[List[Segment]]],
                 times: Optional[np.ndarray], names: List[str], top: int, req: Request, writers: _Writers,
                 out: Outcome) -> None:
    """One block's rows of every output, its accuracy counts and its videos for the page."""
    cache_names = list(reader.class_names)
    ranked = top_k(p, max(top, 5))                                        # [b, k] best first
    labels = reader.labels[block]
    cand = label_map(cache_names, names)[np.where(labels >= 0, labels, -1)]  # [b] candidate index or -1
    _count(out, labels, cand, ranked, cache_names)
    for j, row in enumerate(block):
        vid = str(reader.ids[row])
        label = cache_names[labels[j]] if labels[j] >= 0 else ""
        pairs = [(names[c], float(p[j, c])) for c in ranked[j, :top]]
        writers.pred.row(O.prediction_row(vid, label, pairs))
        segs = seg_lists[j] if seg_lists is not None else None
        if segs is not None:
            for r in O.timeline_rows(vid, segs, names):
                writers.line.row(r)
            writers.subs.write(vid, O.vtt_text(segs, names))
            out.segments += len(segs)
        if len(out.page) < req.page_videos:
            row_times = times[j] if times is not None else reader.times([row])[0]
            out.page.append(VideoResult(vid, label, pairs, video_duration(float(reader.duration[row]), row_times),
                                        segs or []))
    if writers.subs is not None:
        writers.subs.flush()
    out.videos += len(block)


def _count(out: Outcome, labels: np.ndarray, cand: np.ndarray, ranked: np.ndarray, cache_names: List[str]) -> None:
    out.unlabelled += int((labels < 0).sum())
    for lab in labels[(labels >= 0) & (cand < 0)]:
        out.unknown_class += 1
        out.unknown_names[cache_names[lab]] = out.unknown_names.get(cache_names[lab], 0) + 1
    known = cand >= 0
    out.truth.append(cand[known])
    out.pred.append(ranked[known, 0])
    out.hit5.append((ranked[known, :5] == cand[known, None]).any(axis=1))


def _timelines(reader: CacheReader, block: np.ndarray, emb: np.ndarray, times: np.ndarray, head: Head,
               text: Optional[np.ndarray], req: Request) -> List[List[Segment]]:
    n = emb.shape[1]
    starts = window_starts(n, req.window, req.stride)
    windows = head.window_predict(emb, starts, min(req.window, n), text)   # [b, W, C]
    durations = np.array([video_duration(float(reader.duration[r]), times[j]) for j, r in enumerate(block)])
    return block_segments(windows, starts, req.window, n, durations)
