"""Files predict writes: predictions.csv, timeline.csv and one WebVTT subtitle file per video."""
import csv
import os
from typing import List, Sequence, Tuple

from clipvid.atomic import AtomicFile
from train.timeline import Segment

PREDICTIONS = "predictions.csv"
TIMELINE = "timeline.csv"
SUBTITLES = "subtitles"
SUMMARY = "summary.json"
FAILURES = "failures.csv"
PAGE = "timeline.html"


class CsvOut:
    """A CSV written row by row into a temporary file that replaces `path` only when closed whole."""

    def __init__(self, path: str, header: Sequence[str]):
        self._out = AtomicFile(path)
        self._w = csv.writer(self._out.file)
        self._w.writerow(header)

    def row(self, values: Sequence[object]) -> None:
        self._w.writerow(values)

    def close(self) -> None:
        self._out.commit()

    def abandon(self) -> None:
        self._out.abandon()


def predictions_header(top: int) -> List[str]:
    cols = ["id", "label"]
    for k in range(1, top + 1):
        cols += [f"pred_{k}", f"score_{k}"]
    return cols


def prediction_row(vid: str, label: str, ranked: Sequence[Tuple[str, float]]) -> List[str]:
    out = [vid, label]
    for name, p in ranked:
        out += [name, f"{p:.6f}"]
    return out


def timeline_rows(vid: str, segments: Sequence[Segment], names: Sequence[str]) -> List[List[str]]:
    return [[vid, f"{s.start_s:.3f}", f"{s.end_s:.3f}", names[s.label], f"{s.score:.6f}"] for s in segments]


def safe_relpath(vid: str) -> str:
    """A video id as a path that stays inside its folder (no absolute paths, no '..')."""
    parts = [p for p in vid.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return os.path.join(*parts) if parts else "_"


def _stamp(seconds: float) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _cue_text(text: str) -> str:
    """WebVTT cue text: &, < and > are markup there (and '-->' would end the timing line)."""
    return " ".join(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").split())


def vtt_text(segments: Sequence[Segment], names: Sequence[str]) -> str:
    """WebVTT: one cue per merged segment, the class name and its score."""
    lines = ["WEBVTT", ""]
    for i, s in enumerate(segments, 1):
        lines += [str(i), f"{_stamp(s.start_s)} --> {_stamp(s.end_s)}",
                  f"{_cue_text(names[s.label])} ({s.score:.2f})", ""]
    return "\n".join(lines)


def _write_texts(items: List[Tuple[str, str]]) -> None:
    for path, text in items:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


class SubtitleWriter:
    """SUBTITLES/<id>.vtt files written by a few threads, a block of files per task (creating many small
    files waits on the disk, not the CPU); each folder is made once, and at most `pending` blocks wait."""

    def __init__(self, folder: str, threads: int = 4, pending: int = 16):
        from concurrent.futures import ThreadPoolExecutor
        self.root = os.path.join(folder, SUBTITLES)
        self._pool = ThreadPoolExecutor(threads)
        self._futures: List = []
        self._pending = pending
        self._made = set()
        self._block: List[Tuple[str, str]] = []

    def write(self, vid: str, text: str) -> None:
        """Queue SUBTITLES/<id>.vtt; written when the block is flushed."""
        path = os.path.join(self.root, safe_relpath(vid) + ".vtt")
        parent = os.path.dirname(path)
        if parent not in self._made:
            os.makedirs(parent, exist_ok=True)
            self._made.add(parent)
        self._block.append((path, text))

    def flush(self) -> None:
        """Hand the queued files to a writer thread (waiting for the oldest blocks when too many are queued)."""
        if self._block:
            self._futures.append(self._pool.submit(_write_texts, self._block))
            self._block = []
        while len(self._futures) > self._pending:
            self._futures.pop(0).result()

    def close(self) -> None:
        """Write what is left and wait for every file; the first failure is raised (an OSError naming the file)."""
        try:
            self.flush()
            for fut in self._futures:
                fut.result()
        finally:
            self._futures = []
            self._pool.shutdown(wait=True)

    def abandon(self) -> None:
        for fut in self._futures:
            fut.cancel()
        self._futures, self._block = [], []
        self._pool.shutdown(wait=True)
