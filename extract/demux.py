"""Whether PyAV decodes in this process, which containers it decodes, and Matroska/WebM keyframe tables."""
# The table is read without decoding: ~15 ms for a 2-minute clip (bench/PERFORMANCE.md).
import os
import time
from typing import Optional

import numpy as np

# libavformat's names of the demuxers whose packets carry keyframe flags from the file itself
# (Matroska's SimpleBlock/BlockGroup flags) and whose timestamps PyAV and the command line read alike
# (tests/test_extract_inproc.py compares them frame for frame).
DEMUXED = frozenset({"matroska", "webm"})
# Demuxers whose files are decoded in-process without a keyframe table (one pass from the start, no
# seeks), with the command line's frame times rebuilt (extract.clitimes): AVI packets carry only
# decode times, which PyAV's default AVFMT_FLAG_GENPTS turns into made-up presentation times.
CLI_TIMED = frozenset({"avi", "gif"})


# Set in a process whose threads decode several videos at once (a Dask worker with several task
# threads): PyAV holds the GIL for much of its work, so those threads would wait for each other
# where ffmpeg processes do not (bench.gpu: 16 threads of one process, 16.5 against 44.3 videos/s).
_SHARED_GIL = False


def share_gil(several: bool) -> None:
    """Say whether this process decodes several videos at once (then ffmpeg processes decode them)."""
    global _SHARED_GIL
    _SHARED_GIL = several


def available() -> bool:
    """Whether PyAV imports here and in-process decoding is wanted: CLIPVID_INPROC=0 never, =1 always,
    unset unless this process decodes several videos at once (else the ffmpeg command line decodes)."""
    setting = os.environ.get("CLIPVID_INPROC", "")
    if setting == "0" or (_SHARED_GIL and setting != "1"):
        return False
    try:
        import av  # noqa: F401
        return True
    except Exception:           # ImportError, or its bundled libraries failing to load
        return False


def open_file(path: str):
    """A PyAV container for the file at `path`, read as a file whatever its name: a relative name
    like 'pipe:7.mp4' would otherwise be taken for a protocol (file descriptor 7)."""
    import av
    return av.open("file:" + os.path.abspath(path))


def demux_keyframes(path: str, fps: float, seconds: float = 30.0) -> Optional[np.ndarray]:
    """[K] the video keyframes of a Matroska/WebM file as frame indices at `fps` (their times
    from the container's start times fps, so index / fps is the keyframe's time, as
    extract.inproc reads the table); None for other containers, without PyAV, on any error, or when
    demuxing takes more than `seconds` (a damaged file: the command line then decodes it as before)."""
    if fps <= 0 or not available():
        return None
    try:
        with open_file(path) as container:
            if not DEMUXED & set(container.format.name.split(",")):
                return None
            stream = container.streams.video[0]
            sec = float(stream.time_base)
            start = (container.start_time or 0) / 1e6
            end = time.monotonic() + seconds
            times = []
            for pkt in container.demux(stream):
                if time.monotonic() > end:
                    return None
                if pkt.is_keyframe and pkt.size and (pkt.pts is not None or pkt.dts is not None):
                    times.append((pkt.pts if pkt.pts is not None else pkt.dts) * sec - start)
    except Exception:           # no video stream, a damaged file: the command line decides as before
        return None
    if not times:
        return None
    return np.unique(np.rint(np.asarray(times) * fps).astype(np.int64))     # [K]
