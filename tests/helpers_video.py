"""Test helpers: make small videos with ffmpeg and decode every frame at full size."""
import contextlib
import json
import os
import socket
import stat
import subprocess
from pathlib import Path
from typing import Callable, Iterator, Tuple

import numpy as np

from extract.ffmpeg_bin import ffmpeg_exe


def ffmpeg(*args: str) -> None:
    """Run ffmpeg (lavfi inputs welcome); raise with its stderr when it fails."""
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
                         capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"ffmpeg {' '.join(args)}: {out.stderr[-500:]}")


def make_video(path: str, seconds: float = 2.0, fps: int = 25, size: str = "160x120",
               src: str = "testsrc2", extra: Tuple[str, ...] = ()) -> str:
    """A small H.264 test-pattern clip (moving pattern, so frames differ)."""
    ffmpeg("-f", "lavfi", "-i", f"{src}=size={size}:rate={fps}:duration={seconds}",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *extra, os.fspath(path))
    return os.fspath(path)


def decode_all(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """Every frame as the ffmpeg command line decodes and shows it (display matrix applied), RGB, with
    its time from the container's start: [F, H, W, 3] uint8, [F] s (raw frames in NUT, read by PyAV)."""
    import av
    proc = subprocess.Popen([ffmpeg_exe(), "-v", "error", "-nostdin", "-i", "file:" + os.path.abspath(path),
                             "-map", "0:v:0", "-fps_mode", "passthrough", "-enc_time_base", "demux",
                             "-c:v", "rawvideo", "-pix_fmt", "rgb24", "-f", "nut", "pipe:"], stdout=subprocess.PIPE)
    with av.open(proc.stdout, format="nut") as nut:
        got = [(f.to_ndarray(), float(f.time)) for f in nut.decode(video=0)]
    assert proc.wait() == 0 and got, path
    return np.stack([f for f, _ in got]), np.array([t for _, t in got])


def nearest_rows(frame_times: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The reference choice: for each target, the index of the nearest of sorted frame times, ties to
    the earlier (brute force over every frame). [n]"""
    dist = np.abs(np.asarray(targets)[:, None] - np.asarray(frame_times)[None, :])      # [n, F]
    return np.argmin(dist, axis=1).astype(np.int64)        # (argmin: the first of equal distances)


def ffprobe(path: str) -> dict:
    """ffprobe's reading of the first video stream: displayed width and height (the display matrix's
    quarter turns applied), rotation, duration (the stream's, else the file's) and average fps."""
    from tests.needs import ffprobe as ffprobe_exe
    out = subprocess.run([ffprobe_exe(), "-v", "error", "-of", "json", "-select_streams", "v:0", "-show_streams",
                          "-show_format", path], capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    st, fmt = info["streams"][0], info["format"]
    rotation = next((float(d["rotation"]) for d in st.get("side_data_list", []) if "rotation" in d), 0.0)
    w, h = (st["height"], st["width"]) if round(rotation / 90) % 2 else (st["width"], st["height"])
    num, den = (int(x) for x in st.get("avg_frame_rate", "0/1").split("/"))
    return {"width": w, "height": h, "rotation": rotation, "fps": num / den if den else 0.0,
            "duration": float(st.get("duration") or fmt.get("duration") or 0.0)}


@contextlib.contextmanager
def counting_ffmpeg(folder, monkeypatch) -> Iterator[Callable[[], int]]:
    """Inside the block every ffmpeg start goes through a wrapper that logs it, then runs the real one;
    yields a function that returns how many started since its last call."""
    log, wrapper = Path(folder) / "runs.log", Path(folder) / "ffmpeg"
    log.write_text("")
    wrapper.write_text(f'#!/bin/sh\necho run >> "{log}"\nexec "{ffmpeg_exe()}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("CLIPVID_FFMPEG", os.fspath(wrapper))
    ffmpeg_exe.cache_clear()

    def started() -> int:
        count = log.read_text().count("run")
        log.write_text("")
        return count
    try:
        yield started
    finally:
        monkeypatch.delenv("CLIPVID_FFMPEG")
        ffmpeg_exe.cache_clear()


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port` now."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
