"""Grab one frame of a video as a JPEG thumbnail with ffmpeg (search and predict pages)."""
import os
import subprocess
from typing import Optional

THUMB_WIDTH = 320
FFMPEG_TIMEOUT_S = 30


def default_root(cache_path: str, source_root: object = None) -> str:
    """Where video ids are relative to: the cache's `source_root` setting if it exists, else the cache's folder."""
    if source_root and os.path.isdir(str(source_root)):
        return str(source_root)
    return os.path.dirname(os.path.abspath(cache_path))


def grab_frame(path: str, t: float, width: int = THUMB_WIDTH) -> Optional[bytes]:
    """JPEG bytes of the frame at t seconds, or None when ffmpeg cannot make one."""
    from extract.ffmpeg_bin import ffmpeg_exe
    # -ss before -i seeks by keyframe then decodes forward: fast and frame-accurate enough for a thumbnail.
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-ss", f"{max(0.0, float(t)):.3f}", "-i", path,
           "-frames:v", "1", "-vf", f"scale={int(width)}:-2", "-f", "image2pipe", "-c:v", "mjpeg", "pipe:1"]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired, RuntimeError):
        return None
    return out.stdout if out.returncode == 0 and out.stdout[:2] == b"\xff\xd8" else None
