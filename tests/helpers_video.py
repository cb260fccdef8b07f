"""Test helpers: make small videos with ffmpeg and decode every frame at full size."""
import contextlib
import os
import re
import socket
import stat
import subprocess
from pathlib import Path
from typing import Callable, Iterator, Tuple

import numpy as np

from extract.ffmpeg_bin import ffmpeg_exe
from extract.probe import probe
from extract.sampling import displayed_size


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
    """Every frame at its displayed size, RGB, with its timestamp: [F, H, W, 3] uint8, [F] s."""
    info = probe(path)
    w, h = displayed_size(info.width, info.height, info.rotation)
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path, "-vf", "showinfo",
                          "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"],
                         capture_output=True, check=True)
    pts = np.array([float(x) for x in re.findall(r"pts_time:\s*([-0-9.e]+)", out.stderr.decode())])
    frames = np.frombuffer(out.stdout, np.uint8).reshape(-1, h, w, 3)
    assert len(frames) == len(pts)
    return frames, pts


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
