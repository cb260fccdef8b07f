"""Pure maths of frame sampling: target times, nearest-frame choice, CLIP resize geometry, strategy."""
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

CLIP_SIZE = 224
# A pass decodes every frame; a seek decodes from the previous keyframe. Seeking wins once a video
# has many frames per sample (measured by bench.decode; see README, Performance).
SEEK_MIN_FRAMES_PER_SAMPLE = 150
SEEK_MIN_DURATION = 60.0  # seconds; short clips always take one pass
# A seek's cost in pass-frames: each frame it decodes costs ~1.1 (0.57 against 0.54 ms at 360p
# H.264), and each target's own input (open, index, decoder start) ~25 more. Fitted by
# bench.decode's long clips (keyframes every 60 and 250 frames); see bench/PERFORMANCE.md.
SEEK_FRAME_COST = 1.1
SEEK_INPUT_COST = 25.0


def target_times(duration: float, n: int) -> np.ndarray:
    """n evenly spaced times over [0, duration): the centre of each of n equal slices. [n]"""
    step = duration / n
    return (np.arange(n, dtype=np.float64) + 0.5) * step


def nearest_rows(frame_times: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each target, the index of the nearest frame time (ties go to the earlier frame). [n]"""
    frame_times = np.asarray(frame_times, dtype=np.float64)
    pos = np.searchsorted(frame_times, targets)                 # first frame at or after the target
    pos = np.clip(pos, 1, max(len(frame_times) - 1, 1))
    if len(frame_times) == 1:
        return np.zeros(len(targets), dtype=np.int64)
    before, after = frame_times[pos - 1], frame_times[pos]
    return np.where(targets - before <= after - targets, pos - 1, pos).astype(np.int64)


def _select_constants(duration: float, n: int, fps: float) -> Tuple[str, str, str, str]:
    """(first target, step, half a frame interval, end) as select_expression prints them."""
    step = duration / n
    half = 0.5 / fps if fps > 0 else 0.0
    return f"{0.5 * step:.6f}", f"{step:.9f}", f"{half:.6f}", f"{2 * duration + 2 * step:.6f}"


def select_expression(duration: float, n: int, fps: float) -> str:
    """An ffmpeg `select` expression keeping, for every target, the first frame within half a
    frame interval before it. A register (st/ld) holds the next threshold, so one pass keeps at
    most ~n frames; the exact nearest frame per target is then chosen in Python. Frames go on
    being kept up to twice the duration (at most ~2n in all), so a stream longer than its header
    says is seen, and one much longer cannot fill memory."""
    t0, step, half, end = _select_constants(duration, n, fps)
    nxt = f"{t0}+(floor((t+{half}-{t0})/{step})+1)*{step}-{half}"
    return f"if(gte(t,ld(0))*lt(t,{end}),st(0,{nxt})*0+1,0)"


class PassRule:
    """Which frames select_expression keeps, computed as ffmpeg's expression evaluator computes it
    (the same printed constants, the same order of double operations), for decoders that run it
    themselves (extract.inproc): the frames kept, and so the frames chosen, are the same."""

    def __init__(self, duration: float, n: int, fps: float):
        self.t0, self.step, self.half, self.end = (float(c) for c in _select_constants(duration, n, fps))
        self.wanted = 0.0            # the register: the next frame at or after this time is kept

    def keep(self, t: float) -> bool:
        if not (t >= self.wanted and t < self.end):
            return False
        self.wanted = self.t0 + (math.floor((t + self.half - self.t0) / self.step) + 1) * self.step - self.half
        return True

    def done(self) -> bool:
        return self.wanted >= self.end


@dataclass(frozen=True)
class Geometry:
    """Resize to short side `size` then centre-crop a square, as CLIP's torchvision preprocess does."""
    width: int
    height: int
    crop_x: int
    crop_y: int
    size: int = CLIP_SIZE
    pre_width: int = 0    # when set, a centred crop of the source to this size comes first
    pre_height: int = 0
    interpolation: str = "bicubic"   # the backbone's (extract.backbones.Preprocess)


def clip_geometry(width: int, height: int, size: int = CLIP_SIZE) -> Geometry:
    """torchvision Resize(size) keeps the short side = size and truncates the long one; CenterCrop
    rounds the offset half to even (Python round)."""
    if width <= height:
        w, h = size, int(size * height / width)
    else:
        w, h = int(size * width / height), size
    return Geometry(w, h, int(round((w - size) / 2.0)), int(round((h - size) / 2.0)), size)


MAX_ASPECT = 4  # a longer side beyond this many short sides is centre-cropped before scaling


def bounded_geometry(width: int, height: int, size: int = CLIP_SIZE) -> Geometry:
    """clip_geometry, but for extreme shapes (10000x10) the source is first cropped to its centre
    MAX_ASPECT:1 part, so the scaled frame stays small; the final centre square is the same region."""
    short, long_ = min(width, height), max(width, height)
    if long_ <= MAX_ASPECT * short:
        return clip_geometry(width, height, size)
    keep = min(long_, MAX_ASPECT * short + (MAX_ASPECT * short) % 2)
    w, h = (keep, height) if width > height else (width, keep)
    g = clip_geometry(w, h, size)
    return Geometry(g.width, g.height, g.crop_x, g.crop_y, size, w, h)


def model_geometry(width: int, height: int, prep=None) -> Geometry:
    """The geometry of a backbone's preprocessing (extract.backbones.Preprocess; None: OpenAI CLIP's):
    short side to its size and a centre square, or the whole frame squashed to size x size."""
    if prep is None:
        return bounded_geometry(width, height)
    if prep.resize == "squash":
        return Geometry(prep.size, prep.size, 0, 0, prep.size, interpolation=prep.interpolation)
    g = bounded_geometry(width, height, prep.size)
    return Geometry(g.width, g.height, g.crop_x, g.crop_y, g.size, g.pre_width, g.pre_height, prep.interpolation)


def displayed_size(width: int, height: int, rotation: float) -> Tuple[int, int]:
    """Frame size after ffmpeg's autorotation (quarter turns swap width and height)."""
    quarter = int(round(rotation / 90.0)) % 2
    return (height, width) if quarter else (width, height)


def seek_frames(duration: float, fps: float, n: int, keyframes: np.ndarray) -> int:
    """Frames a seek per sample decodes: from the keyframe at or before each target to the target."""
    idx = np.floor(target_times(duration, n) * fps).astype(np.int64)           # [n] frame index
    before = keyframes[np.clip(np.searchsorted(keyframes, idx, side="right") - 1, 0, None)]
    return int(np.sum(np.maximum(idx - before, 0) + 1))


def choose_strategy(duration: float, fps: float, n: int, keyframes: Optional[np.ndarray] = None) -> str:
    """'pass' (one decode of everything) or 'seek' (one seek per sample) for a video.

    With the keyframe table (MP4/MOV), the cheaper of the two by frames decoded, seek paying
    SEEK_FRAME_COST per frame and SEEK_INPUT_COST per target; without it, a threshold on frames per sample."""
    if duration < SEEK_MIN_DURATION or fps <= 0:
        return "pass"
    total = duration * fps
    if keyframes is not None and len(keyframes):
        cost = seek_frames(duration, fps, n, keyframes) * SEEK_FRAME_COST + n * SEEK_INPUT_COST
        return "seek" if cost < total else "pass"
    frames_per_sample = total / max(n, 1)
    return "seek" if frames_per_sample >= SEEK_MIN_FRAMES_PER_SAMPLE else "pass"


def count_distinct(rows: np.ndarray) -> int:
    """How many different source frames the rows use."""
    return int(len(np.unique(rows)))


def is_valid_frames(n: int) -> bool:
    return isinstance(n, int) and n >= 1 and math.isfinite(n)
