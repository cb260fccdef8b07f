"""The decoders a user would pick instead of ours (torchcodec, PyAV, decord, OpenCV), each asked for
the same output: N frames nearest the centres of N equal slices, short side 224 bicubic, centre crop.

Every peer runs single-threaded (one core, as one pipeline worker) and uses its own library's idea
of the frame rate and frame count (constant frame rate assumed: none of them honours VFR the way
our sampler does). A peer whose library does not import is left out with the reason."""
import importlib
from typing import Callable, Dict, List, Tuple

import numpy as np

from bench.peers import N
from extract import geometry, sampling

S = geometry.CLIP_SIZE

# A clip this long or longer is sampled by seeking (one seek per target) where the peer has no
# smarter way of its own (PyAV); shorter ones are decoded through. Same threshold as ours.
SEEK_FROM = sampling.SEEK_MIN_DURATION

Peer = Callable[[str], np.ndarray]


def target_indices(duration: float, fps: float, count: int, n: int = N) -> List[int]:
    """The frame index nearest each target time, for a constant frame rate (frame k shows at k/fps)."""
    idx = np.rint(sampling.target_times(duration, n) * fps).astype(np.int64)
    return np.clip(idx, 0, max(count - 1, 0)).tolist()


def _crop(frame: np.ndarray, geo: geometry.Placement) -> np.ndarray:
    return frame[geo.crop_y:geo.crop_y + S, geo.crop_x:geo.crop_x + S]


def torchcodec_peer(path: str) -> np.ndarray:
    """torchcodec's exact mode: frames by index (it seeks only when the next one lies past the next
    keyframe), then torchvision's bicubic resize of the batch (its in-decoder Resize is bilinear only)."""
    import torch
    from torchcodec.decoders import VideoDecoder
    from torchvision.transforms.v2 import functional as tvf
    torch.set_num_threads(1)
    dec = VideoDecoder(path, num_ffmpeg_threads=1, seek_mode="exact")
    m = dec.metadata
    idx = target_indices(m.duration_seconds, m.average_fps, m.num_frames)
    frames = dec.get_frames_at(indices=idx).data                               # [N, 3, H, W] uint8
    geo = geometry.place(frames.shape[3], frames.shape[2], geometry.CLIP)
    out = tvf.resize(frames, [geo.height, geo.width], interpolation=tvf.InterpolationMode.BICUBIC, antialias=True)
    out = out[:, :, geo.crop_y:geo.crop_y + S, geo.crop_x:geo.crop_x + S]
    return out.permute(0, 2, 3, 1).numpy()                                    # [N, S, S, 3]


def pyav_peer(path: str) -> np.ndarray:
    """PyAV: decode through and keep the wanted frames (short clips), or one seek per target (long);
    each kept frame resized by swscale (bicubic) straight to RGB."""
    import av
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "NONE"
        stream.codec_context.thread_count = 1
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        duration = (float(stream.duration * stream.time_base) if stream.duration
                    else (container.duration or 0) / av.time_base)
        w, h = stream.codec_context.width, stream.codec_context.height
        geo = geometry.place(w, h, geometry.CLIP)

        def rgb(frame) -> np.ndarray:
            img = frame.reformat(width=geo.width, height=geo.height, format="rgb24", interpolation="BICUBIC")
            return _crop(img.to_ndarray(), geo)

        targets = sampling.target_times(duration, N)
        if duration < SEEK_FROM:
            count = stream.frames or int(round(duration * fps))
            want = target_indices(duration, fps, count)
            kept: Dict[int, np.ndarray] = {}
            for i, frame in enumerate(container.decode(stream)):
                if i in want and i not in kept:
                    kept[i] = rgb(frame)
                if i >= want[-1]:
                    break
            last = kept[max(kept)] if kept else np.zeros((S, S, 3), np.uint8)
            return np.stack([kept.get(i, last) for i in want])
        out = []
        half = 0.5 / fps if fps > 0 else 0.0
        for t in targets:
            container.seek(int((t - half) / stream.time_base), stream=stream, backward=True)
            frame = None
            for frame in container.decode(stream):
                if frame.time is not None and frame.time >= t - half:
                    break
            if frame is not None:
                out.append(rgb(frame))
        return np.stack(out)


def decord_peer(path: str) -> np.ndarray:
    """decord: its reader resizes in the decoder (swscale) and get_batch seeks as it sees fit."""
    import decord
    probe = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    h, w = probe[0].shape[:2] if len(probe) else (0, 0)
    fps, count = probe.get_avg_fps(), len(probe)
    del probe
    geo = geometry.place(w, h, geometry.CLIP)
    vr = decord.VideoReader(path, ctx=decord.cpu(0), width=geo.width, height=geo.height, num_threads=1)
    frames = vr.get_batch(target_indices(count / fps if fps else 0.0, fps, count)).asnumpy()   # [N, H, W, 3]
    return frames[:, geo.crop_y:geo.crop_y + S, geo.crop_x:geo.crop_x + S]


def opencv_peer(path: str) -> np.ndarray:
    """clip-video-encode / video2numpy's way: OpenCV in-process, grab every frame, retrieve the
    wanted ones, resize the short side to 224 (cubic) and centre-crop."""
    import cv2
    cv2.setNumThreads(1)
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = cap.get(cv2.CAP_PROP_FPS)
    want = target_indices(total / fps if fps > 0 else 0.0, fps, total) if total > 0 else []
    kept: Dict[int, np.ndarray] = {}
    i = 0
    while want and i <= want[-1] and cap.grab():
        if i in want:
            ok, frame = cap.retrieve()
            if ok:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                geo = geometry.place(frame.shape[1], frame.shape[0], geometry.CLIP)
                kept[i] = _crop(cv2.resize(frame, (geo.width, geo.height), interpolation=cv2.INTER_CUBIC), geo)
        i += 1
    cap.release()
    if not kept:
        return np.zeros((0, S, S, 3), np.uint8)
    last = kept[max(kept)]
    return np.stack([kept.get(j, last) for j in want])


PEERS: Dict[str, Tuple[str, Peer]] = {
    "torchcodec": ("torchcodec.decoders", torchcodec_peer),
    "pyav": ("av", pyav_peer),
    "decord": ("decord", decord_peer),
    "opencv": ("cv2", opencv_peer),
}


def available() -> Tuple[Dict[str, Peer], Dict[str, str], Dict[str, str]]:
    """({name: peer} whose library imports here, {name: library version}, {name: why not} for the rest)."""
    found: Dict[str, Peer] = {}
    versions: Dict[str, str] = {}
    missing: Dict[str, str] = {}
    for name, (module, fn) in PEERS.items():
        try:
            importlib.import_module(module)
            top = importlib.import_module(module.split(".")[0])
        except Exception as exc:                      # ImportError, or a library whose shared objects fail to load
            missing[name] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            continue
        found[name], versions[name] = fn, str(getattr(top, "__version__", "?"))
    return found, versions, missing
