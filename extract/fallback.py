"""The ffmpeg command line (through ffmpeg-python) for the files PyAV cannot open or decode."""
import fcntl
import os
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from typing import Iterator, List, Sequence, Tuple

import av
import ffmpeg
import numpy as np

from extract import sampling
from extract.facts import Deadline, VideoError
from extract.ffmpeg_bin import ffmpeg_exe
from extract.frames import Collector, Sample
from extract.geometry import Geometry

PIPE_SIZE = 1 << 20   # bytes asked for each pipe: fewer wake-ups for the frames a video sends


def grow_pipe(fd: int) -> None:
    """Ask for a PIPE_SIZE pipe; Linux refuses past pipe-user-pages-soft for a non-root user (and
    other systems have no F_SETPIPE_SZ): the default size then serves, a little slower."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (AttributeError, OSError):
        pass


@contextmanager
def running(args: List[str], deadline: Deadline) -> Iterator[subprocess.Popen]:
    """ffmpeg with `args` (stdout a pipe, errors only in stderr), killed at the deadline; raises
    VideoError with ffmpeg's first error line when it fails, or when it ran out of time."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        grow_pipe(proc.stdout.fileno())
        expired = threading.Event()
        timer = threading.Timer(deadline.left(), lambda: (expired.set(), proc.kill()))
        timer.start()
        try:
            yield proc
            code = proc.wait()          # (its output was read to the end: it is exiting)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            timer.cancel()
            proc.stdout.close()
        if expired.is_set():
            raise VideoError(f"decoding did not finish within {deadline.seconds:.0f} s (--video-timeout)")
        err.seek(0)
        lines = [ln for ln in err.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        if code and lines:          # the first complaint names the cause; the later ones wrap it up
            raise VideoError(f"ffmpeg: {lines[0].strip()[:300]}")


def _input(path: str):
    # 'file:' + absolute path: no name is ever read as an option ('-x.mp4') or a protocol ('pipe:1').
    return ffmpeg.input("file:" + os.path.abspath(path))


def packet_times(path: str, deadline: Deadline) -> Tuple[np.ndarray, float]:
    """([P] start times, end) in s of the first video stream's packets, from the container's start
    (ffmpeg shifts it to 0), without decoding: the framecrc muxer's comma-separated rows."""
    cmd = _input(path).output("pipe:", map="0:v:0", c="copy", f="framecrc").get_args()
    with running(cmd, deadline) as proc:
        text = proc.stdout.read().decode("ascii", "replace")
    tb, starts, ends = None, [], []
    for line in text.splitlines():
        if line.startswith("#tb 0:"):
            num, den = line.split(":")[1].split("/")
            tb = int(num) / int(den)
        elif tb and line[:1].isdigit():
            cols = line.split(",")
            starts.append(int(cols[2]) * tb)
            ends.append((int(cols[2]) + int(cols[3])) * tb)
    if not starts:
        raise VideoError("no video stream ffmpeg can read")
    return np.sort(np.asarray(starts)), max(ends)


def sample_cli(path: str, n: int, geometries: Sequence[Geometry], deadline: Deadline, why: str) -> Sample:
    """Sample n rows through the command line: the packets' times give the duration; one decode
    keeps ~n frames (sampling.select_expression), turned upright by ffmpeg and sent as raw RGB in
    NUT, which PyAV reads from the pipe with each frame's time."""
    starts, end = packet_times(path, deadline)
    duration = end - min(starts[0], 0.0)
    fps = len(starts) / duration if duration > 0 else 0.0
    if not duration > 0:
        raise VideoError("zero or unknown duration")
    picker = sampling.Picker(sampling.target_times(duration, n))
    got = Collector(n, geometries, rotate=False)
    stream = _input(path).video.filter("select", sampling.select_expression(duration, n, fps))
    # (the input's time base kept: NUT would otherwise round the times to one of its own)
    cmd = stream.output("pipe:", format="nut", vcodec="rawvideo", pix_fmt="rgb24", fps_mode="passthrough",
                        enc_time_base="demux").get_args()
    with running(cmd, deadline) as proc:
        try:
            with av.open(proc.stdout, format="nut") as nut:
                for number, frame in enumerate(nut.decode(video=0)):
                    deadline.left()
                    got.take(picker.push(float(frame.time), (number, frame)))
        except av.FFmpegError:
            pass        # (ffmpeg's own reason, when it failed, is raised on leaving `running`)
    got.take(picker.finish())
    return got.sample(duration, fps, "pass", "ffmpeg", f"PyAV: {why}")
