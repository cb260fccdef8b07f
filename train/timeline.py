"""Per-moment labels: a head on sliding windows of a video's frame rows, merged into labelled segments."""
from dataclasses import dataclass
from typing import Callable, List, Tuple

import numpy as np

from train.method import gather_windows


@dataclass
class Segment:
    """A stretch of a video with one predicted class: its index, and its mean probability over the windows."""
    start_s: float
    end_s: float
    label: int
    score: float


def default_window(n: int) -> Tuple[int, int]:
    """(window, stride) in rows of N: N/5 and N/10, about one label per second of a 10 s clip."""
    return max(1, round(n / 5)), max(1, round(n / 10))


def window_starts(n: int, window: int, stride: int) -> np.ndarray:
    """First rows [W] of windows of `window` rows every `stride`; the last window always ends at row n."""
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be at least 1 (got {window}, {stride})")
    window = min(window, n)
    starts = list(range(0, n - window + 1, stride))
    if starts[-1] != n - window:
        starts.append(n - window)
    return np.asarray(starts, np.int64)


def window_probabilities(predict: Callable[[np.ndarray], np.ndarray], frames: np.ndarray,
                         window: int, stride: int) -> np.ndarray:
    """Probabilities [B, W, C] of every window of frames [B, N, D]; predict maps [b, w, D] -> [b, C]."""
    b, n, _ = frames.shape
    starts = window_starts(n, window, stride)
    probs = predict(gather_windows(frames, starts, min(window, n)))  # [B*W, C]
    return probs.reshape(b, len(starts), -1)


def video_duration(duration: float, times: np.ndarray) -> float:
    """Seconds the N rows span: the decoder's duration, else estimated from the row times (slice centres)."""
    if duration and duration > 0:
        return float(duration)
    n = len(times)
    return float(times[-1] * n / (n - 0.5)) if n > 1 and times[-1] > 0 else 0.0


def segments(probs: np.ndarray, starts: np.ndarray, window: int, n: int, duration: float) -> List[Segment]:
    """Merge windows [W, C] into segments tiling [0, duration]: a window owns the time nearest its centre."""
    return block_segments(probs[None], starts, window, n, np.asarray([duration], np.float64))[0]


def block_segments(probs: np.ndarray, starts: np.ndarray, window: int, n: int,
                   durations: np.ndarray) -> List[List[Segment]]:
    """segments() of every video of a block at once: windows [B, W, C], durations [B] seconds."""
    b, w, _ = probs.shape
    pred = probs.argmax(axis=2)                                       # [B, W]
    score = np.take_along_axis(probs, pred[..., None], axis=2)[..., 0]  # [B, W]
    centres = (starts + min(window, n) / 2.0)[None, :] * np.asarray(durations, np.float64)[:, None] / n  # [B, W] s
    bounds = np.concatenate([np.zeros((b, 1)), (centres[:, 1:] + centres[:, :-1]) / 2.0,
                             np.asarray(durations, np.float64)[:, None]], axis=1)  # [B, W + 1]
    new = np.ones((b, w), bool)
    new[:, 1:] = pred[:, 1:] != pred[:, :-1]                          # [B, W] a run starts here
    first = np.flatnonzero(new)                                       # run starts in the flat [B * W]
    length = np.diff(np.append(first, b * w))                         # runs never cross videos: new[:, 0]
    mean = np.add.reduceat(score.ravel(), first) / length.astype(score.dtype)  # [runs]
    video, at = np.divmod(first, w)
    out: List[List[Segment]] = [[] for _ in range(b)]
    for v, lo, hi, label, sc in zip(video.tolist(), at.tolist(), (at + length).tolist(),
                                    pred.ravel()[first].tolist(), mean.tolist()):
        out[v].append(Segment(float(bounds[v, lo]), float(bounds[v, hi]), label, sc))
    return out


def timeline(predict: Callable[[np.ndarray], np.ndarray], frames: np.ndarray, duration: float,
             window: int, stride: int) -> List[Segment]:
    """Labelled segments of one video's frames [N, D] lasting `duration` seconds."""
    n = frames.shape[0]
    probs = window_probabilities(predict, frames[None], window, stride)[0]   # [W, C]
    return segments(probs, window_starts(n, window, stride), window, n, duration)
