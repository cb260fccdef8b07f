"""Pure maths of frame sampling: target times, the nearest frame per target, pass or seek."""
import math
from typing import Any, List, Optional, Tuple

import numpy as np

# A pass decodes every frame up to the last target; a seek jumps to a keyframe when one lies
# between the last frame decoded and the next target. Without a keyframe table, seeking wins once a
# video has many frames per sample (bench.decode; bench/PERFORMANCE.md).
SEEK_MIN_FRAMES_PER_SAMPLE = 150
SEEK_MIN_DURATION = 60.0  # seconds; short clips always take one pass
# A seek's cost beyond the frames it decodes (flush, read from the keyframe, decoder restart), in
# decoded frames (fitted on bench.decode's long classes; bench/PERFORMANCE.md).
SEEK_INPUT_COST = 10.0


def target_times(duration: float, n: int) -> np.ndarray:
    """n evenly spaced times over [0, duration): the centre of each of n equal slices. [n]"""
    return (np.arange(n, dtype=np.float64) + 0.5) * (duration / n)


class Picker:
    """Decoded frames in, in time order; out, for each target, the nearest frame (ties: the earlier)
    of all the frames, while holding only the last frame seen."""

    def __init__(self, targets: np.ndarray):
        self.targets = targets.tolist()
        self.k = 0
        self.prev: Optional[Tuple[float, Any]] = None

    @property
    def wanted(self) -> float:
        """The next target not yet served (inf when all are)."""
        return self.targets[self.k] if self.k < len(self.targets) else math.inf

    def push(self, t: float, item: Any) -> List[Tuple[float, Any]]:
        """(time, item) for each target this frame's arrival settles. A frame not after the last one
        (back after a seek, a repeated time) is skipped: what it could serve is already served."""
        if self.prev is not None and t <= self.prev[0]:
            return []
        out = []
        while self.k < len(self.targets) and t >= self.targets[self.k]:
            target = self.targets[self.k]
            near_prev = self.prev is not None and target - self.prev[0] <= t - target
            out.append(self.prev if near_prev else (t, item))
            self.k += 1
        self.prev = (t, item)
        return out

    def finish(self) -> List[Tuple[float, Any]]:
        """The targets after the last frame: each gets that frame."""
        out = [self.prev] * (len(self.targets) - self.k) if self.prev is not None else []
        self.k = len(self.targets)
        return out


def select_expression(duration: float, n: int, fps: float) -> str:
    """An ffmpeg `select` expression keeping, for every target, the first frame within half a frame
    interval before it (a register holds the next threshold: at most ~n frames), and going on up
    to twice the duration, so a stream longer than its header says is seen in bounded memory."""
    step = duration / n
    t0, half, end = f"{0.5 * step:.6f}", f"{0.5 / fps if fps > 0 else 0.0:.6f}", f"{2 * duration + 2 * step:.6f}"
    nxt = f"{t0}+(floor((t+{half}-{t0})/{step:.9f})+1)*{step:.9f}-{half}"
    return f"if(gte(t,ld(0))*lt(t,{end}),st(0,{nxt})*0+1,0)"


def target_frames(duration: float, fps: float, n: int) -> np.ndarray:
    """The frame index at each target time. [n] int64"""
    return np.floor(target_times(duration, n) * fps).astype(np.int64)


def seek_frames(duration: float, fps: float, n: int, keyframes: np.ndarray) -> Tuple[int, int]:
    """(frames decoded, seeks) when seeking as extract.video does: for each target, from the last
    keyframe at or before the frame preceding it when that keyframe lies past the last frame
    decoded, else onwards from the last frame decoded. keyframes [K] sorted frame indices."""
    idx = target_frames(duration, fps, n)                                      # [n] frame index
    prev = np.concatenate(([-1], idx[:-1]))                                    # [n] last decoded
    key = keyframes[np.clip(np.searchsorted(keyframes, idx - 1, side="right") - 1, 0, None)]
    seek = key > prev                                                          # [n]
    return int(np.where(seek, idx - key + 1, idx - prev).sum()), int(seek.sum())


def choose_strategy(duration: float, fps: float, n: int, keyframes: Optional[np.ndarray] = None) -> str:
    """'pass' (one decode of everything) or 'seek' (skip to keyframes ahead of targets) for a video.

    With a keyframe table [K] (frame indices), the cheaper of the two in decoded frames; without
    it, a threshold on frames per sample."""
    if duration < SEEK_MIN_DURATION or fps <= 0:
        return "pass"
    if keyframes is not None and len(keyframes):
        through = int(target_frames(duration, fps, n)[-1]) + 1   # a pass stops decoding there
        frames, seeks = seek_frames(duration, fps, n, keyframes)
        return "seek" if frames + seeks * SEEK_INPUT_COST < through else "pass"
    return "seek" if duration * fps / max(n, 1) >= SEEK_MIN_FRAMES_PER_SAMPLE else "pass"
