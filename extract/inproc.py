"""Decode a planned video's sampled frames in-process (PyAV), seeking once per group of targets:
each group of pictures that holds a target is decoded only up to its last target, and groups
that hold none are skipped (AVI and GIF: one pass from the start, extract.clitimes). The frames kept
are the ones the ffmpeg command line keeps (same select rule or seek rule, same timestamps), resized
by the same filter chain."""
import bisect
import math
from fractions import Fraction
from typing import List, Optional, Tuple

import numpy as np

from extract import sampling
from extract.clitimes import CliTimes
from extract.demux import CLI_TIMED, available, open_file, share_gil  # noqa: F401 (inproc.available, inproc.share_gil: API)
from extract.decode import SEEK_WINDOW, filter_text, scale_filters
from extract.plan import Deadline, Plan
from extract.probe import VideoError, VideoInfo

_FIRST = (0,)      # a pass serves one target per kept frame

# Seeks start this far before the wanted time, then further back while the first frame decoded
# after the seek is not a keyframe at or before it (a B-frame stream's keyframe shows after its
# decode time; an open group of pictures begins with frames that need the one before).
SEEK_BACKOFF = (0.0, 0.5, 2.0, 8.0)


class InprocUnsure(VideoError):
    """The in-process decoder could not be sure of giving the command line's frames: decode with ffmpeg."""


def _rescale(value: int, src: Fraction, dst: Fraction) -> int:
    """av_rescale_q with rounding to nearest, halves away from zero: value * src / dst."""
    q = Fraction(value) * src / dst
    return int(q + Fraction(1, 2)) if q >= 0 else -int(-q + Fraction(1, 2))


def time_string(t: float) -> str:
    """A time as ffmpeg prints it (av_ts2timestr, showinfo's pts_time): 6 decimals, more below 1 s."""
    mag = math.floor(math.log10(abs(t))) if t != 0 and math.isfinite(t) else 0
    return f"{t:.{-mag + 5 if mag < 0 else 6}f}"


class SeekRule:
    """Which frames seek_command keeps: for each target (and the header's end), the first frame whose
    time is at or after it, as ffmpeg's accurate seek trims (the target printed in microseconds,
    rescaled to the stream's time base), if within SEEK_WINDOW of it."""

    def __init__(self, info: VideoInfo, n: int, tb: Fraction):
        starts = [*sampling.target_times(info.duration, n), info.duration]
        self.us = [int(f"{s:.6f}".replace(".", "")) for s in starts]
        self.pts = [_rescale(u, Fraction(1, 1000000), tb) for u in self.us]
        self.window = max(SEEK_WINDOW, 4.0 / info.fps if info.fps else SEEK_WINDOW)
        self.k = 0
        self.wanted = starts[0]
        self.n = n

    def serve(self, pts: int, t: float) -> List[int]:
        """The targets (their input index) this frame is the first frame at or after."""
        out = []
        while self.k < len(self.pts) and pts >= self.pts[self.k]:
            if t - self.us[self.k] / 1e6 < self.window:
                out.append(self.k)
            self.k += 1
        if self.k < len(self.pts):
            self.wanted = self.us[self.k] / 1e6
        return out

    def done(self) -> bool:
        return self.k >= len(self.pts)


def _filter_graph(av, stream, geo: sampling.Geometry, info: VideoInfo):
    """buffer -> ffmpeg's autorotation -> scale_filters -> buffersink, as the command line builds it."""
    graph = av.filter.Graph()
    nodes = [graph.add_buffer(template=stream)]
    theta = -round(info.rotation) % 360          # ffmpeg turns the picture by minus the matrix's rotation
    turn = {90: [("transpose", "clock")], 180: [("hflip", ""), ("vflip", "")], 270: [("transpose", "cclock")]}
    chain = turn.get(theta, []) + [(name, filter_text(name, args, kw).partition("=")[2])
                                   for name, args, kw in scale_filters(geo, info)]
    for name, args in chain:
        nodes.append(graph.add(name, args))
    nodes.append(graph.add("buffersink"))
    for a, b in zip(nodes, nodes[1:]):
        a.link_to(b)
    graph.configure()
    return graph


def eligible(p: Plan) -> bool:
    """Whether a plan may be decoded in-process: a keyframe table read from a header we believe
    (MP4/MOV) or from the demuxed packets (Matroska/WebM: extract.demux), or an AVI or GIF whose
    header was read in-process and that one pass samples (decoded from the start, no seeks: see
    _cli_times); a quarter-turn rotation at most."""
    return ((p.keyframes is not None or (p.container in CLI_TIMED and p.strategy == "pass"))
            and round(p.info.rotation) % 90 == 0 and p.info.rotation == round(p.info.rotation)
            and available())


def decode_inproc(p: Plan, n: int, threads: int, deadline: Deadline,
                  stats: Optional[dict] = None) -> Tuple[VideoInfo, Tuple[np.ndarray, np.ndarray]]:
    """(PyAV's reading of the file, (frames [F, 3, S, S] G, B, R planes, times [F])) for a plan whose
    strategy says which rule picks the frames: 'pass' (select_expression) or 'seek' (seek_command).
    `stats`, if given, gets the frames decoded and the seeks made."""
    import av
    try:
        with open_file(p.path) as container:
            return _decode(av, container, p, n, threads, deadline, {} if stats is None else stats)
    except av.FFmpegError as exc:
        raise InprocUnsure(f"PyAV: {exc}")


def _decode(av, container, p: Plan, n: int, threads: int, deadline: Deadline, stats: dict):
    stream = container.streams.video[0]
    ctx = stream.codec_context
    ctx.thread_count = threads
    cli = _cli_times(av, container, p)    # AVI, GIF: the command line's frame times; None: the frames' own
    tb = Fraction(stream.time_base.numerator, stream.time_base.denominator)
    shift = _rescale(-(container.start_time or 0), Fraction(1, 1000000), tb)   # as ffmpeg's ts_offset
    theirs = VideoInfo((container.duration or 0) / 1e6, float(stream.average_rate or 0), ctx.width, ctx.height,
                       p.info.rotation)
    seek = p.strategy == "seek"
    rule = SeekRule(p.info, n, tb) if seek else sampling.PassRule(p.info.duration, n, p.info.fps)
    # [K] keyframe times, roughly (index / fps): they only decide where a seek may pay; what a seek
    # lands on is checked, so an estimate off by a few frames costs time, never frames.
    known = p.keyframes is not None and p.info.fps > 0
    kf_times = (p.keyframes / p.info.fps).tolist() if known else []
    graph = _filter_graph(av, stream, p.geo, p.info)
    size = p.geo.size
    # The kept pictures go straight into one buffer (a list stacked at the end cost a copy of them all).
    buf = np.empty((n + 2, 3, size, size), np.uint8)       # [capacity, 3, S, S] G, B, R
    count = 0
    times: List[float] = []
    parts: List[int] = []
    pos = -np.inf                 # time of the last frame decoded
    # (with frame threads a skip setting would reach the wrong packet; with `cli` it would change times)
    skip = ctx.thread_count == 1 and cli is None
    frames_of = lambda: _frames(container, stream, rule, tb, shift, skip)
    frames_iter = frames_of()                            # from the start, no seek
    sought = None                 # the wanted time of the last seek: one seek per wanted frame at most
    sec = tb.numerator / tb.denominator
    # Per decoded frame only a few comparisons: the loop runs for every frame of the clip.
    next_kf = _next_keyframe(kf_times, pos)     # the first keyframe time after pos
    decoded = seeks = 0
    while not rule.done():
        deadline.left()                                   # raises once the video's time is up
        wanted = rule.wanted
        if next_kf <= wanted and wanted != sought and pos > -np.inf:     # a keyframe in (pos, wanted]
            frames_iter, sought = _seek(container, stream, wanted, tb, shift, frames_of), wanted
            seeks += 1
        frame = next(frames_iter, None)
        if frame is None:
            break                 # the stream ended
        pts = _frame_pts(frame, cli) + shift
        decoded += 1
        t = pts * sec
        if t >= next_kf or t < pos:               # past it, or back after a seek
            next_kf = _next_keyframe(kf_times, t)
        pos = t
        served = rule.serve(pts, t) if seek else (_FIRST if rule.keep(t) else ())
        if served:
            if count + len(served) > len(buf):
                buf = np.concatenate([buf, np.empty_like(buf)])
            graph.push(frame)
            _planes(graph.pull(), size, buf[count])
            buf[count + 1:count + len(served)] = buf[count]
            count += len(served)
            times += [float(time_string(t))] * len(served)  # what showinfo prints and decode reads back
            parts += served
    stats.update(decoded=decoded, seeks=seeks)
    if not count:
        raise VideoError("no frames could be decoded")
    got = buf[:count]                                      # [F, 3, S, S] G, B, R
    t_arr = np.asarray(times, np.float64)
    if seek:
        _check_seek(parts, t_arr, p.info, n)
    return theirs, (got, t_arr)


def _cli_times(av, container, p: Plan) -> Optional[CliTimes]:
    """For a plan of a CLI_TIMED container (AVI, GIF): PyAV's made-up presentation times switched off
    (AVFMT_FLAG_GENPTS, which the command line does not set) and the command line's frame times
    rebuilt (extract.clitimes); None for the others, whose frames keep their own times."""
    if not p.container:
        return None
    if p.container not in container.format.name.split(",") or p.strategy != "pass" or p.keyframes is not None:
        raise InprocUnsure(f"not the one-pass {p.container} file planned")
    container.flags &= ~av.container.Flags.gen_pts.value   # (read by each av_read_frame: in time before the first)
    return CliTimes()


def _frame_pts(frame, cli: Optional[CliTimes]) -> int:
    """A decoded frame's presentation time in its stream's time base, as the command line has it."""
    pts = frame.pts if cli is None else cli(frame.pts, frame.dts, frame.duration or 0)
    if pts is None:
        raise InprocUnsure("a frame without a timestamp")
    return pts


def _planes(frame, size: int, out: np.ndarray) -> None:
    """A gbrp frame's planes into out [3, S, S] in stored order (G, B, R), the layout the command line sends."""
    for i, plane in enumerate(frame.planes[:3]):
        out[i] = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:size, :size]


def _next_keyframe(kf_times: List[float], after: float) -> float:
    """The first keyframe time after `after` (inf when none); kf_times sorted."""
    i = bisect.bisect_right(kf_times, after)
    return kf_times[i] if i < len(kf_times) else math.inf


def _seek(container, stream, wanted: float, tb: Fraction, shift: int, frames_of):
    """Frames from a keyframe at or before `wanted` (s, from the start): backward seeks, further back
    until the first frame decoded is a keyframe at or before it, or from the very start."""
    for back in SEEK_BACKOFF:
        at = _rescale(int(round((wanted - back) * 1e6)), Fraction(1, 1000000), tb) - shift
        container.seek(at, stream=stream, backward=True)      # (PyAV flushes the decoder)
        frames = frames_of()
        first = next(frames, None)
        if first is None:
            return iter(())
        t = (first.pts + shift) * (tb.numerator / tb.denominator) if first.pts is not None else None
        if first.key_frame and t is not None and t <= wanted:
            return _chain(first, frames)
    raise InprocUnsure(f"no keyframe found at or before {wanted:.3f} s")


def _frames(container, stream, rule, tb: Fraction, shift: int, skip: bool):
    """Decoded frames from the demuxer's position. A packet whose picture shows before the rule's
    next wanted time can never be kept: where no other picture refers to it either (a non-reference
    B-frame), the decoder is told to skip it (AVDISCARD_NONREF), which changes no other picture."""
    ctx = stream.codec_context
    sec = tb.numerator / tb.denominator
    setting = None
    for packet in container.demux(stream):
        if skip:
            pts = packet.pts
            early = pts is not None and (pts + shift + 1) * sec < rule.wanted
            if early is not setting:            # (set only when it changes: a property call per packet)
                ctx.skip_frame = "NONREF" if early else "DEFAULT"
                setting = early
        yield from packet.decode()          # (the last, empty packet flushes the decoder)


def _chain(first, rest):
    yield first
    yield from rest


def _check_seek(parts: List[int], times: np.ndarray, info: VideoInfo, n: int) -> None:
    """seek_frames' test: targets served well after their time mean an inexact seek (use a pass)."""
    from extract.decode import InexactSeek, SEEK_TOLERANCE
    targets = sampling.target_times(info.duration, n)
    off = [abs(t - targets[k]) for k, t in zip(parts, times) if k < n]
    if off and max(off) > max(SEEK_TOLERANCE, 2.0 / info.fps if info.fps > 0 else 0.0):
        raise InexactSeek(f"seeking lands {max(off):.1f} s from its target")
