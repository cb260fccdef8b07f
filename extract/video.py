"""Sample a video through PyAV: one open gives the stream facts, the plan (pass or seeks), the decode
and, per geometry, the conversion of the picked frames."""
import contextlib
import functools
import itertools
import math
import os
from typing import Iterator, Optional, Sequence

import av
import numpy as np

from extract import sampling
from extract.facts import Deadline, VideoError
from extract.frames import Collector, Sample
from extract.geometry import Geometry

SEEK_BACKOFF = (0.0, 0.5, 2.0, 8.0)   # s: further back while a seek lands after its target
SEEK_GAP = 2.0     # s: without a keyframe table, a seek where the next target is further than this


class PyAVFailed(Exception):
    """PyAV could not open or decode this file: the command line samples it (extract.fallback)."""


class InexactSeek(Exception):
    """Seeking lands after its targets (a container without an index): one pass samples the video."""


# Demuxers that open the files a playlist names: such an open can block for ever (a FIFO with no
# writer) where nothing in-process can interrupt it. PyAV never opens them; the command line,
# which a timer can kill, samples those files.
OPENS_OTHER_FILES = frozenset({"concat", "hls", "dash", "imf"})


@functools.lru_cache(maxsize=1)
def _demuxers() -> str:
    return ",".join(sorted(set(av.formats_available) - OPENS_OTHER_FILES))


def open_file(path: str):
    """A PyAV container for the file at `path`, read as a file whatever its name ('pipe:7.mp4')."""
    return av.open("file:" + os.path.abspath(path), options={"format_whitelist": _demuxers()})


def sample_pyav(path: str, n: int, geometries: Sequence[Geometry], threads: int, deadline: Deadline,
                strategy: Optional[str] = None) -> Sample:
    """Sample n rows of a video with PyAV; raises VideoError (the file's fault) or PyAVFailed (any
    other failure of PyAV's: its libraries' errors, a header its bindings cannot represent)."""
    try:
        try:
            with open_file(path) as container:
                return _Video(container, n, threads, deadline).sample(geometries, strategy)
        except InexactSeek:
            with open_file(path) as container:
                return _Video(container, n, threads, deadline).sample(geometries, "pass")
    except (VideoError, PyAVFailed, MemoryError):
        raise
    except Exception as exc:
        raise PyAVFailed(" ".join(str(exc).split())[:200] or type(exc).__name__) from exc


class _Video:
    """One open file: its video stream's facts, then decodes over a duration."""

    def __init__(self, container, n: int, threads: int, deadline: Deadline):
        self.container, self.n, self.deadline, self.threads = container, n, deadline, threads
        # No made-up presentation times (PyAV's default AVFMT_FLAG_GENPTS, which ffmpeg's tools do
        # not set): an AVI B-frame stream's would go backwards; without them a frame has the time
        # ffprobe gives it (its own, else its packet's decode time).
        container.flags &= ~av.container.Flags.gen_pts.value
        streams = [s for s in container.streams.video
                   if not s.disposition & av.stream.Disposition.attached_pic]
        if not streams:
            raise VideoError("no video stream (audio or data only)")
        self.stream = s = streams[0]
        if s.codec_context is None:
            raise PyAVFailed("no decoder for its video codec")
        s.codec_context.thread_count = threads
        if threads > 1:                       # (PyAV's default would split slices only)
            s.codec_context.thread_type = "AUTO"
        # The bitstream's crop exactly, as the command line applies it: by default libavcodec keeps
        # the left edge aligned in memory and crops fewer columns there.
        s.codec_context.flags |= av.codec.context.Flags.unaligned
        w, h = s.codec_context.width, s.codec_context.height
        if not (w < 1 << 16 and h < 1 << 16):
            raise VideoError(f"the header gives an impossible frame size ({w}x{h})")
        if w <= 0 or h <= 0:
            raise PyAVFailed(f"no frame size for codec {s.codec_context.name}")
        self.tb = float(s.time_base)
        self.start = (container.start_time or 0) / 1e6         # s: the zero of every time stored
        self.fps = float(s.average_rate or s.guessed_rate or 0)
        self.end = -math.inf      # s: the end of the last video packet read
        self.draining = False     # read packets only (their times), decode nothing
        self.wanted = math.inf    # s: the next target; packets well before it need no picture
        # (with frame threads a skip setting would reach another packet than the one it was set for)
        self.may_skip = threads == 1
        self.gap = 1.0 / self.fps if self.fps > 0 else 0.0

    def duration(self) -> float:
        """The video stream's own span where the header gives it (audio may run on), else the file's."""
        s = self.stream
        if s.duration:
            return ((s.start_time or 0) + s.duration) * self.tb - self.start
        return (self.container.duration or 0) / 1e6

    def keyframes(self, duration: float) -> Optional[np.ndarray]:
        """[K] keyframe times (s) from the demuxer's index (MP4 sample tables, Matroska cues), for
        long videos only (short ones always take one pass); None when the index is empty."""
        if duration < sampling.SEEK_MIN_DURATION or self.fps <= 0:
            return None
        if len(self.stream.index_entries) < 2:        # Matroska reads its cues at the first seek
            with contextlib.suppress(av.FFmpegError):
                self.container.seek(0, stream=self.stream, backward=True)
        entries = self.stream.index_entries
        times = [e.timestamp for e in entries if e.is_keyframe] if len(entries) else []
        return np.sort(np.asarray(times, np.float64)) * self.tb - self.start if times else None

    def sample(self, geometries: Sequence[Geometry], strategy: Optional[str]) -> Sample:
        duration = self.duration()
        if duration <= 0:                 # no duration in the header: read the packets' times
            self.draining = True
            for _ in self._frames():
                pass
            self.draining, duration = False, self.end
            self.container.seek(0, stream=self.stream, backward=True)
        if not (math.isfinite(duration) and duration > 0):
            raise VideoError("zero or unknown duration")
        kf = self.keyframes(duration)
        chosen = strategy or sampling.choose_strategy(
            duration, self.fps, self.n, None if kf is None else np.rint(kf * self.fps).astype(np.int64))
        got = self.decode(duration, geometries, chosen, kf)
        # Frames that stop well before the header's duration, or run well past it (a frame count
        # that lies): sample again over the span that has pictures.
        slack = max(1.5 * duration / self.n, 1.5 * self.gap)
        if math.isfinite(self.end) and abs(self.end - duration) > slack:
            note = f"header duration {duration:.2f} s, frames run to {self.end:.2f} s"
            self.container.seek(0, stream=self.stream, backward=True)
            end, self.end = self.end, -math.inf
            return self.decode(end, geometries, chosen, kf).sample(end, self.fps, chosen, "pyav", note)
        return got.sample(duration, self.fps, chosen, "pyav")

    def decode(self, duration: float, geometries: Sequence[Geometry], strategy: str,
               kf: Optional[np.ndarray]) -> Collector:
        """Decode from the start (a pass) or seek ahead of targets whose keyframe lies beyond the
        last frame decoded; then read the rest of the packets (from near the end, when seeking)
        to learn where the pictures end. Picks go straight into a Collector."""
        picker = sampling.Picker(sampling.target_times(duration, self.n))
        self.wanted = picker.wanted
        got = Collector(self.n, geometries, threads=self.threads)
        seek = strategy == "seek"
        frames, pos, number, sought = self._frames(), -math.inf, 0, None
        while picker.wanted < math.inf:
            goal = picker.wanted - self.gap           # the frame before the target may be the nearest
            ahead = _next(kf, pos) <= goal if kf is not None else goal - pos > SEEK_GAP
            if seek and ahead and sought != picker.wanted:       # (one seek per target at most)
                frames, sought = self._seek(goal, picker.wanted), picker.wanted
            frame = next(frames, None)
            if frame is None:
                break
            pos, number = self._time(frame, pos), number + 1
            got.take(picker.push(pos, (number, frame)))
            self.wanted = picker.wanted
        got.take(picker.finish())
        self.draining = True
        if seek and pos < duration - SEEK_GAP:
            self._seek_to(duration - SEEK_GAP)
        for _ in self._frames():
            pass
        self.draining = False
        self.end = max(self.end, pos + self.gap)
        return got

    def _time(self, frame, prev: float) -> float:
        """A frame's time (s from the container's start); one frame after the last when it has none."""
        ts = frame.pts if frame.pts is not None else frame.dts
        if ts is None:
            return prev + (1.0 / self.fps if self.fps > 0 else 0.04)
        return ts * self.tb - self.start

    def _frames(self) -> Iterator:
        """Decoded frames from the demuxer's position; every packet's end time noted in self.end. A
        packet that cannot be decoded costs its picture only, as on the command line. A packet whose
        picture shows two frame intervals or more before the next target can never be picked: where
        no other picture refers to it (a non-reference B-frame) the decoder skips it (AVDISCARD_NONREF),
        which changes no other picture."""
        ctx, skipping = self.stream.codec_context, None
        for packet in self.container.demux(self.stream):
            self.deadline.left()
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is not None:
                self.end = max(self.end, (ts + (packet.duration or 0)) * self.tb - self.start)
            # (a decode time may come before its picture's time by the reorder delay: no skip on it)
            shows = packet.pts * self.tb - self.start if packet.pts is not None else math.inf
            early = self.may_skip and shows + 2 * self.gap < self.wanted
            if early is not skipping:              # (set only when it changes: a property call per packet)
                ctx.skip_frame, skipping = ("NONREF" if early else "DEFAULT"), early
            if self.draining:
                continue
            try:
                yield from packet.decode()          # (the last, empty packet flushes the decoder)
            except av.InvalidDataError:
                continue

    def _seek_to(self, t: float) -> None:
        self.container.seek(int(round((t + self.start) / self.tb)), stream=self.stream, backward=True)

    def _seek(self, goal: float, target: float) -> Iterator:
        """Frames from a keyframe at or before `goal`: further back while the first frame decoded
        lands after `target`; InexactSeek when it still does (then one pass samples the video)."""
        for back in SEEK_BACKOFF:
            try:
                self._seek_to(max(goal - back, 0.0))
            except av.FFmpegError as exc:
                raise InexactSeek(str(exc))
            frames = self._frames()
            first = next(frames, None)
            if first is None:
                return iter(())
            if self._time(first, -math.inf) <= target:
                return itertools.chain([first], frames)
        raise InexactSeek(f"seeking lands after {target:.3f} s")


def _next(kf: np.ndarray, t: float) -> float:
    """The first keyframe time after t (inf when none)."""
    i = int(np.searchsorted(kf, t, side="right"))
    return float(kf[i]) if i < len(kf) else math.inf
