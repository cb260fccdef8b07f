"""Decode N sampled frames of one video with ffmpeg (via ffmpeg-python), resized as CLIP expects."""
import dataclasses
import os
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from typing import List, Optional, Tuple

import ffmpeg
import numpy as np

from extract import sampling
from extract.ffmpeg_bin import ffmpeg_exe
from extract.plan import Deadline, Plan, check_file, header_disagrees, plan_video, replan  # noqa: F401 (check_file: API)
from extract.probe import VideoError, VideoInfo, _packet_duration, last_error_line, parse_inputs

_PTS = re.compile(r"Parsed_showinfo.*?pts_time:\s*(-?[0-9.]+(?:e-?\d+)?)")
_PART_PTS = re.compile(r"\[showinfo@p(\d+) @ [^\]]*\].*?pts_time:\s*(-?[0-9.]+(?:e-?\d+)?)")
_PIPE_SIZE = 1 << 20  # bytes; fewer wake-ups for the ~15 MB of frames a video sends
_RGB_FROM_GBR = np.array([2, 0, 1])
SEEK_WINDOW = 2.0  # seconds read after each seek point; bounds the work if a keyframe is far away
SEEK_TOLERANCE = 0.1  # s; a seek's frame further than this (and two frame intervals) from its target is inexact


@dataclass
class Sample:
    """N rows sampled from one video; rows that show the same source frame share one picture."""
    distinct: np.ndarray  # [D, S, S, 3] uint8 RGB, each source frame used once, resized and centre-
                          # cropped like CLIP's preprocess (a view of planar [D, 3, S, S] memory, as CLIP reads)
    rows: np.ndarray      # [N] int64, which picture of `distinct` each row shows (non-decreasing)
    t: np.ndarray         # [N] float32, timestamp (s) of the source frame of each row
    n_distinct: int       # D: how many different source frames the rows use
    info: VideoInfo
    strategy: str         # 'pass' or 'seek'
    fallback: str = ""    # why the in-process header reading was replaced by ffmpeg's or the frames' ('' when not)

    @property
    def frames(self) -> np.ndarray:
        """[N, S, S, 3] every row's picture (a copy when rows repeat a frame)."""
        if len(self.distinct) == len(self.rows):
            return self.distinct
        planes = self.distinct.transpose(0, 3, 1, 2)            # [D, 3, S, S], the memory as it lies
        return planes[self.rows].transpose(0, 2, 3, 1)


def _source(path: str) -> str:
    # 'file:' + absolute path: no name is ever read as an option ('-x.mp4') or a protocol ('pipe:1').
    return "file:" + os.path.abspath(path)


def run_ffmpeg(cmd: List[str], timeout: float, path: str, expect: int = 0) -> subprocess.CompletedProcess:
    """Run ffmpeg; stdout lands in one preallocated buffer of `expect` bytes (grown if short).

    subprocess.run's communicate() polls both pipes and reads 32 KiB at a time, then joins the
    pieces: ~800 syscalls and a 15 MB copy per video (bench.decode). A 1 MiB pipe, one readinto
    and stderr in a temporary file (it cannot fill up and stall ffmpeg) cost a fraction of that.
    """
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                pipesize=_PIPE_SIZE)
        expired = threading.Event()
        timer = threading.Timer(timeout, lambda: (expired.set(), proc.kill()))
        timer.start()
        try:
            # np.empty, not bytearray: zero-filling a buffer the read overwrites cost ~3 ms per 10 MB.
            buf = np.empty(max(expect, 1 << 16), np.uint8)
            got = proc.stdout.readinto(buf)
            if got == len(buf):                         # more than expected: keep reading
                buf = np.concatenate([buf, np.frombuffer(proc.stdout.read(), np.uint8)])
                got = len(buf)
            proc.stdout.close()
            code = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if expired.is_set():
            raise VideoError("ffmpeg did not finish within the per-video time limit (--video-timeout)")
        err.seek(0)
        return subprocess.CompletedProcess(cmd, code, memoryview(buf)[:got], err.read())


def expected_bytes(info: VideoInfo, n: int, size: int) -> int:
    """About how many bytes of frames one pass sends: n rows, or every frame of a shorter clip."""
    frames = min(n, int(info.duration * info.fps) + 1) if info.fps > 0 else n
    return (frames + 8) * size * size * 3


def scale_filters(geo: sampling.Geometry, info: VideoInfo) -> List[Tuple[str, tuple, dict]]:
    """The (filter, args, kwargs) chain that resizes and crops a frame as CLIP's preprocess does."""
    # Scale before cropping, in that order, as torchvision's Resize then CenterCrop do.
    chain: List[Tuple[str, tuple, dict]] = []
    if geo.pre_width:
        chain.append(("crop", (geo.pre_width, geo.pre_height), {}))
    # Plain bicubic into planar RGB takes swscale's SIMD path: ~35% less CPU than
    # accurate_rnd+full_chroma_int straight to rgb24, and as close to CLIP's PIL resize (bench.decode).
    # Shrinking 2x or more (HD sources), 'area' averaging is as close to PIL's antialiased bicubic
    # (mean difference 1.2 against 1.1 of 255 on 1080p) and ~20% cheaper.
    short = min(geo.pre_width, geo.pre_height) if geo.pre_width else min(info.width, info.height)
    big = short >= 2 * geo.size
    chain.append(("scale", (geo.width, geo.height), {"flags": "area" if big else geo.interpolation}))
    chain.append(("format", ("gbrp",), {}))
    chain.append(("crop", (geo.size, geo.size, geo.crop_x, geo.crop_y), {}))
    return chain


def _crop_scale(stream, geo: sampling.Geometry, info: VideoInfo):
    for name, args, kwargs in scale_filters(geo, info):
        stream = stream.filter(name, *args, **kwargs)
    return stream


def frames_from(out: subprocess.CompletedProcess, size: int, path: str):
    err = out.stderr.decode("utf-8", "replace")
    frame_bytes = size * size * 3
    count = len(out.stdout) // frame_bytes
    times = [float(x) for x in _PTS.findall(err)]
    if count == 0:
        reason = last_error_line(err) if out.returncode else "no frames could be decoded"
        raise VideoError(reason)
    if len(times) != count:
        raise VideoError(f"ffmpeg returned {count} frames but {len(times)} timestamps")
    frames = np.frombuffer(out.stdout[:count * frame_bytes], np.uint8).reshape(count, 3, size, size)  # G, B, R planes
    return frames, np.asarray(times, np.float64)


def pass_command(path: str, info: VideoInfo, n: int, geo: sampling.Geometry, threads: int) -> List[str]:
    """One ffmpeg run that decodes everything but keeps and scales only ~n frames. Times count from
    the container's start (ffmpeg shifts its start time to 0), as seek_command's do; frames up to
    twice the duration are kept, so a stream that runs past its header shows it, in bounded memory."""
    stream = ffmpeg.input(_source(path), threads=threads).video
    stream = stream.filter("select", sampling.select_expression(info.duration, n, info.fps))
    stream = _crop_scale(stream, geo, info).filter("showinfo", checksum=0)
    return stream.output("pipe:", format="rawvideo", pix_fmt="gbrp", fps_mode="passthrough") \
        .global_args("-hide_banner", "-nostdin").compile(cmd=ffmpeg_exe())


def decode_pass(path: str, info: VideoInfo, n: int, geo: sampling.Geometry,
                threads: int, timeout: float):
    """One pass over the video. -> frames [F, 3, S, S], times [F]"""
    out = run_ffmpeg(pass_command(path, info, n, geo, threads), timeout, path, expected_bytes(info, n, geo.size))
    return frames_from(out, geo.size, path)


def seek_command(path: str, info: VideoInfo, n: int, geo: sampling.Geometry, threads: int) -> List[str]:
    """One ffmpeg run with one input per target, each seeking there and keeping its first frame;
    a last input seeks to the header's end (a frame there: the stream runs past it). Each branch's
    showinfo is named after its input. -copyts keeps each frame's own time; -start_at_zero counts it
    from the container's start, the zero of the targets and of pass_command (not the 3601 s of a
    broadcast capture)."""
    window = max(SEEK_WINDOW, 4.0 / info.fps if info.fps else SEEK_WINDOW)
    starts = [*sampling.target_times(info.duration, n), info.duration]
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-copyts", "-start_at_zero"]
    branches = []
    for k, ss in enumerate(starts):
        cmd += ["-threads", str(threads), "-ss", f"{ss:.6f}", "-t", f"{window:.3f}", "-i", _source(path)]
        chain = ["trim=end_frame=1"] + [filter_text(*f) for f in scale_filters(geo, info)]
        branches.append(f"[{k}:v]" + ",".join(chain + [f"showinfo@p{k}=checksum=0"]) + f"[s{k}]")
    joined = "".join(f"[s{k}]" for k in range(len(starts))) + f"concat=n={len(starts)}:v=1:a=0[out]"
    return cmd + ["-filter_complex", ";".join(branches + [joined]), "-map", "[out]", "-fps_mode", "passthrough",
                  "-f", "rawvideo", "-pix_fmt", "gbrp", "pipe:"]


def decode_seek(path: str, info: VideoInfo, n: int, geo: sampling.Geometry,
                threads: int, timeout: float):
    """One seek per target. -> frames [F, 3, S, S], times [F]; a frame past the header's end is
    kept: its time shows the stream runs on (runs_past)."""
    out = run_ffmpeg(seek_command(path, info, n, geo, threads), timeout, path, (n + 10) * geo.size * geo.size * 3)
    return seek_frames(out, geo.size, info, n)


class InexactSeek(VideoError):
    """Seeking landed well after its targets (MPEG-TS and other containers without an index seek to
    a nearby keyframe): one pass over the video samples it instead."""


def seek_frames(out: subprocess.CompletedProcess, size: int, info: VideoInfo,
                n: int) -> Tuple[np.ndarray, np.ndarray]:
    """The frames and times of a seek_command run (see decode_seek); raises InexactSeek."""
    err = out.stderr.decode("utf-8", "replace")
    # Branches log in whatever order the graph runs them; concat sends the frames input by input
    # (each input gives at most one): pair them in input order.
    parts = sorted(((int(k), float(t)) for k, t in _PART_PTS.findall(err)), key=lambda kt: kt[0])
    frame_bytes = size * size * 3
    if not parts:
        raise VideoError(last_error_line(err) if out.returncode else "no frames could be decoded")
    if len(parts) * frame_bytes != len(out.stdout):
        raise VideoError(f"ffmpeg returned {len(out.stdout) // frame_bytes} frames but {len(parts)} timestamps")
    frames = np.frombuffer(out.stdout, np.uint8).reshape(len(parts), 3, size, size)   # G, B, R planes
    targets = sampling.target_times(info.duration, n)
    # An accurate seek keeps the first frame at or after its target: about a frame interval away.
    off = [abs(t - targets[k]) for k, t in parts if k < n]                     # the last input has no target
    if off and max(off) > max(SEEK_TOLERANCE, 2.0 / info.fps if info.fps > 0 else 0.0):
        raise InexactSeek(f"seeking lands {max(off):.1f} s from its target")
    return frames, np.array([t for _, t in parts], np.float64)


def filter_text(name: str, args: tuple, kwargs: dict) -> str:
    """One filter of a chain as ffmpeg's -filter_complex text: name=arg:arg:key=value."""
    parts = [str(a) for a in args] + [f"{k}={v}" for k, v in kwargs.items()]
    return name + ("=" + ":".join(parts) if parts else "")


def _end_slack(info: VideoInfo, n: int) -> float:
    # A complete stream's last frame starts one frame interval before the end: allow for that, or
    # every clip under ~1.5 frames per sample pays a packet scan and a second decode (bench.decode).
    return max(1.5 * info.duration / n, 1.5 / info.fps if info.fps > 0 else 0.0)


def stops_early(times: np.ndarray, info: VideoInfo, n: int) -> bool:
    """Whether the decoded frames end well before the container's duration (audio runs on)."""
    return n > 1 and times.max() < info.duration - _end_slack(info, n)


def runs_past(times: np.ndarray, info: VideoInfo, n: int) -> bool:
    """Whether frames go on well after the duration the header gave (a frame count that lies)."""
    return times.max() > info.duration + _end_slack(info, n)


def mistimed(times: np.ndarray, info: VideoInfo, n: int) -> bool:
    """Whether the decoded frames do not span the duration: sample again over the real one."""
    return len(times) == 0 or stops_early(times, info, n) or runs_past(times, info, n)


def finish(frames: np.ndarray, times: np.ndarray, info: VideoInfo, n: int, strategy: str,
           fallback: str = "") -> Sample:
    """Pick the nearest decoded frame for each of the n target times. frames: [F, 3, S, S] G, B, R."""
    if (np.diff(times) < 0).any():                    # concat/VFR may not deliver in time order
        order = np.argsort(times, kind="stable")
        frames, times = frames[order], times[order]   # (a copy of every frame: only when needed)
    rows = sampling.nearest_rows(times, sampling.target_times(info.duration, n))  # [n]
    # A clip with fewer frames than rows repeats frames: each is kept (and embedded) once.
    used, index = np.unique(rows, return_inverse=True)                            # [D], [n]
    # ffmpeg sends planar G, B, R (packing to rgb24 cost it ~0.2 ms a frame, and CLIP wants planes):
    # one gather picks the frames and puts the planes in R, G, B order; `distinct` is a channels-last view.
    picked = frames[used[:, None], _RGB_FROM_GBR]                                  # [D, 3, S, S]
    return Sample(picked.transpose(0, 2, 3, 1), index.reshape(-1).astype(np.int64), times[rows].astype(np.float32),
                  len(used), info, strategy, fallback)


def sample_video(path: str, n: int, threads: int = 1, timeout: float = 300.0,
                 strategy: Optional[str] = None, prep=None) -> Sample:
    """Sample n rows at evenly spaced times; nearest source frame for each, resized as the backbone's
    preprocessing `prep` does (None: OpenAI CLIP's); raise VideoError."""
    deadline = Deadline(timeout)   # the limit covers every ffmpeg run for this video
    p = plan_video(path, n, deadline, strategy, prep=prep)
    return sample_planned(p, n, threads, deadline)


def sample_planned(p: Plan, n: int, threads: int, deadline: Deadline) -> Sample:
    """Decode a planned video on its own: again from ffmpeg's reading where the header misled us, by
    one pass where seeks land off target, and over the pictured span where the stream stops early
    or runs past the header's duration."""
    try:
        p, (frames, times) = _decode_checked(p, n, threads, deadline)
    except InexactSeek:
        p, (frames, times) = _decode_checked(dataclasses.replace(p, strategy="pass", asked="pass"), n, threads, deadline)
    if mistimed(times, p.info, n):
        # The picture stops early (audio runs on) or runs past the header's end: sample the span
        # that has pictures, from the last video packet (or the last decoded frame, if later).
        frame = 1.0 / p.info.fps if p.info.fps > 0 else 0.0
        end = max(_packet_duration(p.path, deadline.left()), float(times.max()) + frame)
        if end > 0 and abs(end - p.info.duration) > frame:
            why = p.fallback or (f"header duration {p.info.duration:.2f} s, frames run to {end:.2f} s"
                                 if end > p.info.duration else "")
            p = dataclasses.replace(p, info=dataclasses.replace(p.info, duration=end), fallback=why)
            frames, times = _decode_run(p, n, threads, deadline)[1]
            times_ok = times <= end + _end_slack(p.info, n)
            frames, times = frames[times_ok], times[times_ok]
            if not len(times):
                raise VideoError("no frames could be decoded")
    return finish(frames, times, p.info, n, p.strategy, p.fallback)


def _decode_run(p: Plan, n: int, threads: int, deadline: Deadline):
    """Run a plan's ffmpeg command. -> (ffmpeg's reading of the file or None, (frames, times))
    with times counted from the container's start; raises VideoError (with ffmpeg's own reason)."""
    if p.inproc:
        from extract import inproc      # (imports this module)
        if inproc.eligible(p):
            try:
                return inproc.decode_inproc(p, n, threads, deadline)
            except InexactSeek:
                raise
            except Exception:           # unsure of giving the command line's frames, or PyAV failed: ffmpeg decides
                pass
    seek = p.strategy == "seek"
    cmd = (seek_command if seek else pass_command)(p.path, p.info, n, p.geo, threads)
    expect = (n + 10) * p.geo.size * p.geo.size * 3 if seek else expected_bytes(p.info, n, p.geo.size)
    out = run_ffmpeg(cmd, deadline.left(), p.path, expect)
    theirs = parse_inputs(out.stderr.decode("utf-8", "replace")).get(0)
    try:
        return theirs, (seek_frames(out, p.geo.size, p.info, n) if seek else frames_from(out, p.geo.size, p.path))
    except VideoError as exc:
        exc.ffmpeg_info = theirs          # what ffmpeg read, for the caller to compare with the header
        raise


def _decode_checked(p: Plan, n: int, threads: int, deadline: Deadline):
    """Decode a plan; where its header was read in-process and ffmpeg's reading in the same run
    disagrees (size after cropping or rotation, duration), plan again from ffmpeg's and decode again."""
    try:
        theirs, got = _decode_run(p, n, threads, deadline)
    except VideoError as exc:
        why = header_disagrees(p, getattr(exc, "ffmpeg_info", None))
        if not why:
            raise
        theirs, got = None, None
    why = header_disagrees(p, theirs) if got is not None else why
    if why:
        p = replan(p, n, deadline, why)
        got = _decode_run(p, n, threads, deadline)[1]
    return p, got
