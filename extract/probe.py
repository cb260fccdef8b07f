"""What a video is (duration, fps, size, rotation), read from ffmpeg's own header output."""
import re
import subprocess
from dataclasses import dataclass
from typing import Dict, Optional

from extract.ffmpeg_bin import ffmpeg_exe


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
    duration: float     # seconds, 0 when the container does not say
    fps: float          # average frames per second, 0 when unknown
    width: int          # stored width of the first video stream
    height: int
    rotation: float     # degrees from the display matrix, 0 when none


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM = re.compile(r"Stream #\d+:(\d+)[^:]*: Video: (.*)")
_SIZE = re.compile(r"[ ,](\d{1,6})x(\d{1,6})[ ,\]]")
_FPS = re.compile(r"(\d+(?:\.\d+)?)(k?) (?:fps|tbr)")
_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")
_CONTEXT = re.compile(r"^(?:\[[^\]]* @ 0x[0-9a-f]+\]\s*)+")  # ffmpeg's '[in#0 @ 0x55...] ' prefixes
_INPUT = re.compile(r"^Input #(\d+), ", re.M)
# ffmpeg's closing lines say only that something failed earlier ('Conversion failed!', a thread's
# return code); the line before them names what ('Invalid too big or non positive size ...').
_GENERIC = re.compile(r"^(error opening (input|output)|conversion failed|terminating thread|task finished with"
                      r"|error sending frames to consumers|nothing was written|could not open encoder before eof"
                      r"|error reinitializing filters|failed to configure (input|output) pad|error while filtering"
                      r"|error while processing the decoded data|failed to inject frame|error configuring)", re.I)
_TIME = re.compile(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)")


def _seconds(m: "re.Match") -> float:
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def last_error_line(stderr: str) -> str:
    """The most telling line of ffmpeg's complaints, for a one-line failure reason."""
    lines = [_CONTEXT.sub("", ln.strip()) for ln in stderr.splitlines() if ln.strip()]
    specific = [ln for ln in lines if not _GENERIC.match(ln)]
    for ln in [*reversed(specific), *reversed(lines)]:
        low = ln.lower()
        if any(k in low for k in ("invalid", "error", "no such", "denied", "not ", "could not", "failed",
                                   "unknown", "truncat", "corrupt", "moov atom", "end of file")):
            return ln[:300]
    return lines[-1][:300] if lines else "ffmpeg gave no output"


def parse_inputs(stderr: str) -> Dict[int, Optional[VideoInfo]]:
    """ffmpeg's own reading of every input of a run, from the header dump it writes to stderr:
    {input index: VideoInfo, or None when that input has no video stream}."""
    marks = list(_INPUT.finditer(stderr))
    out: Dict[int, Optional[VideoInfo]] = {}
    for k, m in enumerate(marks):
        end = marks[k + 1].start() if k + 1 < len(marks) else len(stderr)
        section = stderr[m.start():end]
        cut = section.find("\nStream mapping:")       # the dump of the last input ends there
        out[int(m.group(1))] = parse_header(section if cut < 0 else section[:cut])
    return out


def parse_header(stderr: str) -> Optional[VideoInfo]:
    """Parse `ffmpeg -i FILE` output; None when there is no video stream."""
    stream = None
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        m = _STREAM.search(line)
        if m and "attached pic" not in line:
            stream = (i, m.group(2))
            break
    if stream is None:
        return None
    i, desc = stream
    size = _SIZE.search(desc)
    width, height = (int(size.group(1)), int(size.group(2))) if size else (0, 0)
    fps = 0.0
    for value, kilo in _FPS.findall(desc):
        fps = float(value) * (1000 if kilo else 1)
        break
    rotation = 0.0
    for line in lines[i + 1:i + 12]:
        if "Stream #" in line:
            break
        r = _ROTATION.search(line)
        if r:
            rotation = float(r.group(1))
    d = _DURATION.search(stderr)
    duration = _seconds(d) if d else 0.0
    return VideoInfo(duration, fps, width, height, rotation)


def probe(path: str, timeout: float = 30.0) -> VideoInfo:
    """Read the header with ffmpeg (the static build starts in ~10 ms, cheaper than ffprobe)."""
    try:
        out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path],
                             capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise VideoError(f"ffmpeg did not read the header within {timeout:.0f} s")
    err = out.stderr.decode("utf-8", "replace")
    info = parse_header(err)
    if info is None:
        if "Input #0" in err and ("Audio:" in err or "Stream #" in err):
            raise VideoError("no video stream (audio or data only)")
        raise VideoError(last_error_line(err))
    if info.width <= 0 or info.height <= 0:
        raise VideoError("video stream has no frame size")
    if info.duration <= 0:
        info = VideoInfo(_packet_duration(path, timeout), info.fps, info.width, info.height, info.rotation)
    return info


def _packet_duration(path: str, timeout: float) -> float:
    """Duration from the last video packet, by copying packets (no decoding), when the header lacks it."""
    try:
        out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path, "-map", "0:v:0",
                              "-c", "copy", "-f", "null", "-"], capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise VideoError(f"ffmpeg did not finish reading packets within {timeout:.0f} s")
    times = _TIME.findall(out.stderr.decode("utf-8", "replace"))
    if not times:
        return 0.0
    h, m, s = times[-1]
    return int(h) * 3600 + int(m) * 60 + float(s)
