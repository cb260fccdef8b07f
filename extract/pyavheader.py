"""Read an AVI's or GIF's header in-process with PyAV: duration, fps and size as ffmpeg's header dump
prints them, so the plan is the one extract.probe's ffmpeg run would give (no process started)."""
from typing import Optional, Tuple

import numpy as np

from extract.demux import CLI_TIMED, available, open_file
from extract.probe import VideoInfo

# A cheap look at the first bytes first: files of other kinds are never opened here.
_MAGIC = ((b"GIF87a", 0), (b"GIF89a", 0), (b"AVI ", 8))


def printed_duration(us: int) -> float:
    """A duration in microseconds as ffmpeg's dump prints it ('Duration: HH:MM:SS.cc', rounded to the
    nearest centisecond) and extract.probe reads it back."""
    secs, rest = divmod(us + 5000, 1000000)
    minutes, secs = divmod(secs, 60)
    hours, minutes = divmod(minutes, 60)
    return hours * 3600 + minutes * 60 + float(f"{secs:02d}.{100 * rest // 1000000:02d}")


def printed_fps(rate: float) -> float:
    """A frame rate as ffmpeg's dump prints it (print_fps: 2 decimals, none when whole, 'k' past
    1000) and extract.probe reads it back."""
    hundredths = int(np.rint(np.float32(rate * 100)))        # lrintf: the product as a C float
    if not hundredths:
        text = f"{rate:.4f}"
    elif hundredths % 100:
        text = f"{rate:.2f}"
    elif hundredths % 100000:
        text = f"{rate:.0f}"
    else:
        return float(f"{rate / 1000:.0f}") * 1000
    return float(text)


def read_pyav_info(path: str) -> Optional[Tuple[VideoInfo, str]]:
    """(VideoInfo as extract.probe would read it, the container's name in CLI_TIMED) for an AVI or
    GIF file; None for other files, without in-process decoding (extract.demux.available), when
    the header lacks a duration, size or video stream, or on any error: ffmpeg reads those."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return None
    if not any(head[at:at + len(magic)] == magic for magic, at in _MAGIC) or not available():
        return None
    import av
    try:
        with open_file(path) as container:
            names = CLI_TIMED & set(container.format.name.split(","))
            if len(names) != 1 or not container.streams.video or not container.duration:
                return None
            stream = container.streams.video[0]
            if stream.disposition & av.stream.Disposition.attached_pic:
                return None                       # ffmpeg's dump skips it; let ffmpeg read such a file
            rate = stream.average_rate or stream.base_rate
            ctx = stream.codec_context
            info = VideoInfo(printed_duration(container.duration), printed_fps(float(rate)) if rate else 0.0,
                             ctx.width, ctx.height, 0.0)
    except Exception:           # a damaged file, an odd stream: the ffmpeg run decides as before
        return None
    if info.duration <= 0 or info.width <= 0 or info.height <= 0:
        return None
    return info, next(iter(names))
