"""Decode N sampled frames of one video with ffmpeg (via ffmpeg-python), resized as CLIP expects."""
import dataclasses
import os
import re
import stat
import subprocess
import time
import tempfile
import threading
from dataclasses import dataclass
from typing import List, Optional, Tuple

import ffmpeg
import numpy as np

from extract import sampling
from extract.ffmpeg_bin import ffmpeg_exe
from extract.aviheader import read_avi_info
from extract.mp4header import read_keyframes, read_mp4_info
from extract.probe import VideoError, VideoInfo, _packet_duration, last_error_line, probe

_PTS = re.compile(r"Parsed_showinfo.*?pts_time:\s*(-?[0-9.]+(?:e-?\d+)?)")
_PIPE_SIZE = 1 << 20  # bytes; fewer wake-ups for the ~15 MB of frames a video sends
_RGB_FROM_GBR = np.array([2, 0, 1])
SEEK_WINDOW = 2.0  # seconds read after each seek point; bounds the work if a keyframe is far away


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
    chain.append(("scale", (geo.width, geo.height), {"flags": "area" if big else "bicubic"}))
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


def decode_pass(path: str, info: VideoInfo, n: int, geo: sampling.Geometry,
                threads: int, timeout: float):
    """One ffmpeg run decodes everything but keeps and scales only ~n frames. -> frames, times"""
    stream = ffmpeg.input(_source(path), threads=threads).video
    stream = stream.filter("select", sampling.select_expression(info.duration, n, info.fps))
    stream = _crop_scale(stream, geo, info).filter("showinfo", checksum=0)
    cmd = stream.output("pipe:", format="rawvideo", pix_fmt="gbrp", fps_mode="passthrough") \
        .global_args("-hide_banner", "-nostdin").compile(cmd=ffmpeg_exe())
    return frames_from(run_ffmpeg(cmd, timeout, path, expected_bytes(info, n, geo.size)), geo.size, path)


def decode_seek(path: str, info: VideoInfo, n: int, geo: sampling.Geometry,
                threads: int, timeout: float):
    """One ffmpeg run with one input per target, each seeking there and keeping its first frame."""
    targets = sampling.target_times(info.duration, n)
    window = max(SEEK_WINDOW, 4.0 / info.fps if info.fps else SEEK_WINDOW)
    parts = []
    for t in targets:
        src = ffmpeg.input(_source(path), ss=f"{t:.6f}", t=f"{window:.3f}", threads=threads, copyts=None)
        parts.append(_crop_scale(src.video.filter("trim", end_frame=1), geo, info).filter("showinfo", checksum=0))
    joined = ffmpeg.concat(*parts, v=1, a=0) if len(parts) > 1 else parts[0]
    cmd = joined.output("pipe:", format="rawvideo", pix_fmt="gbrp", fps_mode="passthrough") \
        .global_args("-hide_banner", "-nostdin", "-copyts").compile(cmd=ffmpeg_exe())
    frames, times = frames_from(run_ffmpeg(cmd, timeout, path, (n + 8) * geo.size * geo.size * 3), geo.size, path)
    return frames, times


def check_file(path: str) -> None:
    """Raise VideoError when `path` is not a readable, non-empty regular file with a UTF-8 name."""
    if os.path.isdir(path):
        raise VideoError("is a directory, not a video file")
    if not os.path.exists(path):
        raise VideoError("file not found")
    if not os.access(path, os.R_OK):
        raise VideoError("file is not readable (permission denied)")
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise VideoError("not a regular file (a FIFO, socket or device)")
    if os.path.getsize(path) == 0:
        raise VideoError("empty file (0 bytes)")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise VideoError("file name is not valid UTF-8; rename the file")


class Deadline:
    """One time limit shared by every ffmpeg run for a video (or a batch of them)."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise VideoError("ffmpeg did not finish within the per-video time limit (--video-timeout)")
        return remaining


@dataclass
class Plan:
    """What sampling a video needs to know before decoding it."""
    path: str
    info: VideoInfo
    geo: sampling.Geometry
    strategy: str


def plan_video(path: str, n: int, deadline: Deadline, strategy: Optional[str] = None) -> Plan:
    """Check the file, read its header and choose pass or seek; raise VideoError."""
    check_file(path)
    # MP4/MOV and plain AVI headers are read in-process; others cost one short ffmpeg run.
    info = read_mp4_info(path) or read_avi_info(path) or probe(path, timeout=min(deadline.left(), 60.0))
    w, h = sampling.displayed_size(info.width, info.height, info.rotation)
    if strategy is None:
        # A seek's cost depends on where the keyframes are; MP4/MOV list them (cheap to read).
        long_enough = info.duration >= sampling.SEEK_MIN_DURATION
        keyframes = read_keyframes(path) if long_enough else None
        strategy = sampling.choose_strategy(info.duration, info.fps, n, keyframes)
    if info.duration <= 0:
        raise VideoError("zero or unknown duration")
    return Plan(path, info, sampling.bounded_geometry(w, h), strategy)


def stops_early(times: np.ndarray, info: VideoInfo, n: int) -> bool:
    """Whether the decoded frames end well before the container's duration (audio runs on)."""
    # A complete stream's last frame starts one frame interval before the end: allow for that, or
    # every clip under ~1.5 frames per sample pays a packet scan and a second decode (bench.decode).
    slack = max(1.5 * info.duration / n, 1.5 / info.fps if info.fps > 0 else 0.0)
    return n > 1 and times.max() < info.duration - slack


def finish(frames: np.ndarray, times: np.ndarray, info: VideoInfo, n: int, strategy: str) -> Sample:
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
                  len(used), info, strategy)


def sample_video(path: str, n: int, threads: int = 1, timeout: float = 300.0,
                 strategy: Optional[str] = None) -> Sample:
    """Sample n rows at evenly spaced times; nearest source frame for each; raise VideoError."""
    deadline = Deadline(timeout)   # the limit covers every ffmpeg run for this video
    p = plan_video(path, n, deadline, strategy)
    return sample_planned(p, n, threads, deadline)


def sample_planned(p: Plan, n: int, threads: int, deadline: Deadline) -> Sample:
    """Decode a planned video on its own (and again over the pictured part if its stream stops early)."""
    info = p.info
    decode = decode_seek if p.strategy == "seek" else decode_pass
    frames, times = decode(p.path, info, n, p.geo, threads, deadline.left())
    if stops_early(times, info, n):
        # The video stream stops early (audio runs on): sample the part that has pictures.
        end = max(_packet_duration(p.path, deadline.left()), float(times.max()))
        if 0 < end < info.duration:
            info = dataclasses.replace(info, duration=end)
            frames, times = decode(p.path, info, n, p.geo, threads, deadline.left())
    return finish(frames, times, info, n, p.strategy)
