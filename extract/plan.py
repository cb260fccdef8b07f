"""What sampling a video needs to know first: a usable file, its header (read in-process where that
is safe, else by ffmpeg), pass or seek; and whether ffmpeg's own reading says the header misled us."""
import dataclasses
import math
import os
import stat
import time
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from extract import sampling
from extract.aviheader import read_avi_info
from extract.demux import demux_keyframes
from extract.mp4header import read_keyframes, read_mp4_info
from extract.pyavheader import read_pyav_info
from extract.probe import VideoError, VideoInfo, probe

# An in-process duration this far from ffmpeg's (which prints centiseconds) means the header misled one of us.
DURATION_SLACK, DURATION_SLACK_SHARE = 0.05, 0.01


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
    source: str = "ffmpeg"          # who read the header: 'header' (in-process) or 'ffmpeg'
    asked: Optional[str] = None     # the strategy the caller asked for, if any
    fallback: str = ""              # why ffmpeg's reading or the frames replaced the header's
    keyframes: Optional[np.ndarray] = None   # [K] keyframe indices (MP4/MOV header, or demuxed: extract.demux), else None
    inproc: bool = True             # a long MP4/MOV may be decoded in-process (extract.inproc); False: ffmpeg only
    container: str = ""             # 'avi' or 'gif' (extract.demux.CLI_TIMED) when its header was read in-process
    prep: object = None             # the backbone's extract.backbones.Preprocess (None: OpenAI CLIP's)


def plan_video(path: str, n: int, deadline: Deadline, strategy: Optional[str] = None,
               use_header: bool = True, prep=None) -> Plan:
    """Check the file, read its header and choose pass or seek; raise VideoError."""
    check_file(path)
    # MP4/MOV, AVI and GIF headers are read in-process; others cost one short ffmpeg run.
    info, container = (_read_header(path) if use_header else (None, ""))
    source = "ffmpeg" if info is None else "header"
    info = info or probe(path, timeout=min(deadline.left(), 60.0))
    if not (math.isfinite(info.duration) and info.duration > 0):
        raise VideoError("zero or unknown duration")
    if not (0 < info.width < 1 << 16 and 0 < info.height < 1 << 16):
        raise VideoError(f"the header gives an impossible frame size ({info.width}x{info.height})")
    w, h = sampling.displayed_size(info.width, info.height, info.rotation)
    # A seek's cost depends on where the keyframes are; MP4/MOV list them (cheap to read, and
    # only believed where the rest of the header was).
    keyframes = read_keyframes(path) if source == "header" and not container else None
    chosen = strategy or sampling.choose_strategy(info.duration, info.fps, n, keyframes)
    if keyframes is None and not container:
        # Matroska/WebM: a table from the demuxed packets lets extract.inproc decode them.
        # Read after the choice, which stays the one made without it: the same frames as before.
        keyframes = demux_keyframes(path, info.fps, min(deadline.left(), 30.0))
    return Plan(path, info, sampling.model_geometry(w, h, prep), chosen, source, strategy, keyframes=keyframes,
                container=container, prep=prep)


def _read_header(path: str) -> Tuple[Optional[VideoInfo], str]:
    """(VideoInfo read in-process or None, 'avi' or 'gif' when the file is one: extract.demux.CLI_TIMED).
    A plain AVI's own chunks first (no PyAV needed); PyAV reads an AVI with audio, and a GIF."""
    info = read_mp4_info(path)
    if info is not None:
        return info, ""
    info = read_avi_info(path)
    if info is not None:
        return info, "avi"
    return read_pyav_info(path) or (None, "")


def header_disagrees(p: Plan, ffmpeg_info: Optional[VideoInfo]) -> str:
    """Why ffmpeg's own reading of the file (the header dump of the decode run itself) says an
    in-process reading is wrong: the frame size after cropping and rotation, or the duration."""
    if p.source != "header" or ffmpeg_info is None:
        return ""
    ours = sampling.displayed_size(p.info.width, p.info.height, p.info.rotation)
    theirs = sampling.displayed_size(ffmpeg_info.width, ffmpeg_info.height, ffmpeg_info.rotation)
    if ours != theirs and min(theirs) > 0:
        return f"header frame size {ours[0]}x{ours[1]}, decoded {theirs[0]}x{theirs[1]}"
    d, fd = p.info.duration, ffmpeg_info.duration
    if fd > 0 and abs(d - fd) > max(DURATION_SLACK, DURATION_SLACK_SHARE * fd):
        return f"header duration {d:.2f} s, ffmpeg reads {fd:.2f} s"
    return ""


def replan(p: Plan, n: int, deadline: Deadline, why: str) -> Plan:
    """The plan again from ffmpeg's reading of the file, remembering why the first was dropped."""
    return dataclasses.replace(plan_video(p.path, n, deadline, p.asked, use_header=False, prep=p.prep), fallback=why)
