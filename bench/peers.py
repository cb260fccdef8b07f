"""The methods ours is measured against: bare decode, naive readers, and the OpenCV peer."""
import re
import subprocess
from typing import List

import numpy as np

from extract import sampling
from extract.decode import sample_video
from extract.ffmpeg_bin import ffmpeg_exe

N = 100
_PTS = re.compile(r"pts_time:\s*(-?[0-9.]+)")


def ours(path: str) -> np.ndarray:
    return sample_video(path, N, threads=1).frames


def ours_many(paths: List[str]) -> int:
    """All paths as a pipeline worker samples them (short clips share ffmpeg runs); each sample is
    dropped once made, as the worker drops it once embedded. Returns how many were sampled."""
    from extract.batch import iter_samples
    done = 0
    for _, sample in iter_samples(paths, N, threads=1):
        if isinstance(sample, Exception):
            raise sample
        done += 1
    return done


def bare_decode(path: str) -> None:
    """The decode limit: every frame decoded, nothing kept (one thread, as a pipeline worker runs)."""
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-threads", "1", "-i", path, "-f", "null", "-"],
                   capture_output=True, check=True)


def _clip_crop(img, size: int = sampling.CLIP_SIZE):
    from PIL import Image
    w, h = img.size
    geo = sampling.clip_geometry(w, h, size)
    img = img.resize((geo.width, geo.height), Image.BICUBIC)
    return np.asarray(img.crop((geo.crop_x, geo.crop_y, geo.crop_x + size, geo.crop_y + size)))


def naive_read_all(path: str) -> np.ndarray:
    """Read every frame (full size, RGB) into Python, then pick the nearest and resize with PIL."""
    from PIL import Image
    from extract.mp4header import read_mp4_info
    from extract.probe import probe
    info = read_mp4_info(path) or probe(path)
    w, h = sampling.displayed_size(info.width, info.height, info.rotation)
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-threads", "1", "-i", path, "-vf", "showinfo",
                          "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"],
                         capture_output=True, check=True)
    frames = np.frombuffer(out.stdout, np.uint8).reshape(-1, h, w, 3)
    pts = np.array([float(x) for x in _PTS.findall(out.stderr.decode())])[:len(frames)]
    rows = sampling.nearest_rows(pts, sampling.target_times(info.duration, N))
    return np.stack([_clip_crop(Image.fromarray(frames[r])) for r in rows])


def naive_seek_each(path: str) -> np.ndarray:
    """One ffmpeg run per sample, each seeking to its time and keeping one resized frame."""
    from extract.mp4header import read_mp4_info
    from extract.probe import probe
    info = read_mp4_info(path) or probe(path)
    w, h = sampling.displayed_size(info.width, info.height, info.rotation)
    geo = sampling.clip_geometry(w, h)
    vf = f"scale={geo.width}:{geo.height}:flags=bicubic,crop={geo.size}:{geo.size}:{geo.crop_x}:{geo.crop_y}"
    frames: List[np.ndarray] = []
    for t in sampling.target_times(info.duration, N):
        out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-threads", "1", "-ss", f"{t:.4f}", "-i", path,
                              "-frames:v", "1", "-vf", vf, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"],
                             capture_output=True, check=True)
        if out.stdout:
            frames.append(np.frombuffer(out.stdout, np.uint8).reshape(geo.size, geo.size, 3))
    return np.stack(frames)


def opencv_peer(path: str) -> np.ndarray:
    """clip-video-encode / video2numpy's way: OpenCV in-process, grab every frame, retrieve the
    sampled ones, resize the short side to 224 (cubic) and centre-crop."""
    import cv2
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    wanted = set(np.linspace(0, max(total - 1, 0), N).round().astype(int).tolist()) if total > 0 else set()
    picked, i = [], 0
    while cap.grab():
        if i in wanted:
            ok, frame = cap.retrieve()
            if ok:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                h, w = frame.shape[:2]
                geo = sampling.clip_geometry(w, h)
                frame = cv2.resize(frame, (geo.width, geo.height), interpolation=cv2.INTER_CUBIC)
                picked.append(frame[geo.crop_y:geo.crop_y + geo.size, geo.crop_x:geo.crop_x + geo.size])
        i += 1
    cap.release()
    return np.stack(picked) if picked else np.zeros((0, 224, 224, 3), np.uint8)
