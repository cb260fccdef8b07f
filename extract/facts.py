"""What sampling one video may fail with, what it learns about the video, and its time limit."""
import os
import stat
import time
from dataclasses import dataclass


class VideoError(Exception):
    """A video that cannot be used; the message is the one-line reason stored in /failures."""


def describe_failure(exc: BaseException) -> VideoError:
    """Any exception met while sampling one video, as that video's VideoError: one line that says
    what is wrong in words (never a bare class name), so it can be stored against the video alone."""
    if isinstance(exc, VideoError):
        return exc
    if isinstance(exc, MemoryError):
        return VideoError("ran out of memory sampling this video (its header may ask for too much)")
    if isinstance(exc, OSError):
        return VideoError(f"cannot read: {exc.strerror or exc}")
    text = " ".join(str(exc).split())[:200]
    return VideoError(f"could not be sampled: {text or 'an internal error'} (unexpected; please report it)")


@dataclass(frozen=True)
class VideoInfo:
    duration: float     # seconds sampled over: the span that has pictures
    fps: float          # average frames per second, 0 when unknown
    width: int          # displayed width: after the bitstream's crop and the display matrix
    height: int
    rotation: float     # degrees of the display matrix (counter-clockwise), 0 when none


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
    """One time limit (--video-timeout) shared by everything done for one video."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise VideoError(f"decoding did not finish within {self.seconds:.0f} s (--video-timeout)")
        return remaining
