"""Read duration, fps, size and rotation of an MP4/MOV from its boxes in-process (no ffmpeg run)."""
import math
import os
import struct
from typing import BinaryIO, Dict, Iterator, Optional, Tuple

import numpy as np

from extract.probe import VideoInfo

# Starting ffmpeg only to read a header costs ~12 ms, 10% of sampling a 10 s clip; reading the
# few boxes here takes ~0.1 ms. Anything unusual returns None and the caller runs ffmpeg instead.
_TOP_LEVEL = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot", b"uuid"}
_VISUAL_ENTRY_SIZE_OFFSET = 8 + 24   # box header, then 6 reserved, 2 index, 16 pre-defined bytes
_MAX_MOOV = 64 << 20                  # a bigger moov is odd enough to leave to ffmpeg


def _boxes(data: bytes, start: int = 0, end: Optional[int] = None) -> Iterator[Tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in data[start:end]."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1:
            if pos + 16 > end:
                return
            size, head = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            return
        yield kind, pos + head, pos + size
        pos += size


def _child(data: bytes, start: int, end: int, kind: bytes) -> Optional[Tuple[int, int]]:
    for k, s, e in _boxes(data, start, end):
        if k == kind:
            return s, e
    return None


def _find_moov(f: BinaryIO, file_size: int) -> Optional[bytes]:
    pos = 0
    while pos + 8 <= file_size:
        f.seek(pos)
        head = f.read(16)
        if len(head) < 8:
            return None
        size, kind = struct.unpack_from(">I4s", head)
        if kind not in _TOP_LEVEL:
            return None       # not a plain MP4/MOV layout (or damaged): let ffmpeg judge it
        if size == 1 and len(head) == 16:
            size = struct.unpack_from(">Q", head, 8)[0]
        elif size == 0:
            size = file_size - pos
        if size < 8:
            return None
        if kind == b"moov":
            if size > _MAX_MOOV or pos + size > file_size:
                return None
            f.seek(pos)
            return f.read(size)
        pos += size
    return None


def _video_track(moov: bytes) -> Optional[Dict[str, object]]:
    """The first track whose handler is 'vide': tkhd matrix, mdhd timescale, stsd size, stts, stsz."""
    for kind, s, e in _boxes(moov, 8):
        if kind != b"trak":
            continue
        mdia = _child(moov, s, e, b"mdia")
        tkhd = _child(moov, s, e, b"tkhd")
        if not mdia or not tkhd:
            continue
        hdlr = _child(moov, *mdia, b"hdlr")
        if not hdlr or moov[hdlr[0] + 8:hdlr[0] + 12] != b"vide":
            continue
        mdhd, minf = _child(moov, *mdia, b"mdhd"), _child(moov, *mdia, b"minf")
        stbl = _child(moov, *minf, b"stbl") if minf else None
        stsd = _child(moov, *stbl, b"stsd") if stbl else None
        stts = _child(moov, *stbl, b"stts") if stbl else None
        stsz = _child(moov, *stbl, b"stsz") if stbl else None
        if not (mdhd and stsd and stts and stsz):
            return None
        edts = _child(moov, s, e, b"edts")
        return {"tkhd": tkhd, "mdhd": mdhd, "stsd": stsd, "stts": stts, "stsz": stsz,
                "stss": _child(moov, *stbl, b"stss"), "elst": _child(moov, *edts, b"elst") if edts else None}
    return None


def _matrix(data: bytes, at: int) -> np.ndarray:
    """The 2x2 rotation/scale part (a b / c d, 16.16 fixed point) of a 3x3 display matrix. [2, 2]"""
    a, b, _, c, d = struct.unpack_from(">5i", data, at)
    return np.array([[a, b], [c, d]], np.float64) / 65536.0


def _rotation(moov: bytes, tkhd: Tuple[int, int], mvhd: Tuple[int, int]) -> float:
    """Display rotation of the track matrix followed by the movie's, as ffmpeg's mov demuxer
    combines them (track x movie) and av_display_rotation_get then reports it."""
    track = _matrix(moov, tkhd[0] + 4 + (32 if moov[tkhd[0]] == 1 else 20) + 16)
    movie = _matrix(moov, mvhd[0] + (48 if moov[mvhd[0]] == 1 else 36))
    (a, b), (c, d) = track @ movie
    sx, sy = math.hypot(a, c), math.hypot(b, d)
    if sx == 0 or sy == 0:
        return 0.0
    rot = -math.degrees(math.atan2(b / sy, a / sx))
    return 0.0 if rot == 0 else round(rot, 2)


def _edit(moov: bytes, elst: Optional[Tuple[int, int]]) -> Optional[Tuple[Optional[int], int]]:
    """(segment duration in movie ticks or None, media start in track ticks) of a plain edit list:
    one edit, no empty edit that delays the track (a start time ffmpeg judges). None otherwise."""
    if elst is None:
        return None, 0
    s, e = elst
    version, count = moov[s], struct.unpack_from(">I", moov, s + 4)[0]
    if count != 1:
        return None
    segment, media_time = struct.unpack_from(">Qq" if version == 1 else ">Ii", moov, s + 8)
    return (segment, media_time) if media_time >= 0 else None


def _read_moov(path: str) -> Optional[bytes]:
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            if f.read(12)[4:8] not in _TOP_LEVEL:
                return None
            return _find_moov(f, size)
    except OSError:
        return None


def read_mp4_info(path: str) -> Optional[VideoInfo]:
    """VideoInfo from the moov box, or None when the file is not a plain MP4/MOV we can read."""
    moov = _read_moov(path)
    if moov is None:
        return None
    try:
        return _parse(moov)
    except (struct.error, IndexError, ValueError, ZeroDivisionError):
        return None


def read_keyframes(path: str) -> Optional[np.ndarray]:
    """0-based indices of the video track's keyframes (its stss box; every frame when absent), or
    None when unknown. What a seek costs depends on them: it decodes from the keyframe before."""
    moov = _read_moov(path)
    track = _video_track(moov) if moov is not None else None
    if track is None:
        return None
    try:
        if track["stss"] is None:
            frames = _frame_count(moov, track)      # bounded by the moov's own size (or None)
            return None if frames is None else np.arange(frames, dtype=np.int64)
        s, e = track["stss"]
        count = struct.unpack_from(">I", moov, s + 4)[0]
        if s + 8 + 4 * count > e or count < 1:
            return None
        return np.frombuffer(moov, ">u4", count, s + 8).astype(np.int64) - 1
    except (struct.error, IndexError, ValueError):
        return None


def _frame_count(moov: bytes, track: Dict[str, object]) -> Optional[int]:
    """Frames in the track when stts and stsz agree on it, else None (a header that lies).
    stsz lists one size per frame inside the moov (read whole, at most _MAX_MOOV), so the count
    is bounded by the bytes read: a four-byte lie cannot make a caller allocate gigabytes."""
    ts, te = track["stts"]
    count = struct.unpack_from(">I", moov, ts + 4)[0]
    if ts + 8 + 8 * count > te:
        return None
    pairs = np.frombuffer(moov, ">u4", 2 * count, ts + 8).reshape(-1, 2).astype(np.int64)  # [count, (n, delta)]
    frames = int(pairs[:, 0].sum())
    zs, ze = track["stsz"]
    size, listed = struct.unpack_from(">II", moov, zs + 4)
    if size == 0 and zs + 12 + 4 * listed > ze:
        return None
    if listed != frames or (size and size * listed > _MAX_FILE):
        return None
    return frames


_MAX_FILE = 1 << 40   # a constant sample size times the count beyond this is not a real file


def _parse(moov: bytes) -> Optional[VideoInfo]:
    if _child(moov, 8, len(moov), b"mvex"):
        return None        # fragmented: the moov holds at most the first fragment; ffmpeg reads them all
    mvhd = _child(moov, 8, len(moov), b"mvhd")
    track = _video_track(moov)
    edit = _edit(moov, track["elst"]) if mvhd and track else None
    if edit is None:
        return None        # no video track, or an empty edit delays the track (a start time): ffmpeg judges it
    v = moov[mvhd[0]]
    scale, duration = struct.unpack_from(">IQ" if v == 1 else ">II", moov, mvhd[0] + (20 if v == 1 else 12))
    s, _ = track["stsd"]
    if struct.unpack_from(">I", moov, s + 4)[0] < 1:
        return None
    width, height = struct.unpack_from(">HH", moov, s + 8 + _VISUAL_ENTRY_SIZE_OFFSET)
    ms = track["mdhd"][0]
    mv = moov[ms]
    timescale = struct.unpack_from(">I", moov, ms + (20 if mv == 1 else 12))[0]
    frames = _frame_count(moov, track)
    if frames is None:
        return None
    ts = track["stts"][0]
    pairs = np.frombuffer(moov, ">u4", 2 * struct.unpack_from(">I", moov, ts + 4)[0], ts + 8).reshape(-1, 2)
    ticks = int((pairs[:, 0].astype(np.int64) * pairs[:, 1]).sum())
    if not (scale and duration and timescale and ticks and width and height):
        return None  # fragmented or empty: ffmpeg knows more
    # mvhd's duration must cover what the track plays (its samples from the edit's start, or the
    # edit's length if shorter), give or take two frames; else one of them lies.
    segment, media_time = edit
    plays = (ticks - media_time) / timescale
    if segment is not None:
        plays = min(plays, segment / scale)
    frame = ticks / timescale / max(frames, 1)
    if duration / scale < max(plays - 2 * frame, 0.5 * frame):
        return None
    # avg_frame_rate as ffmpeg's mov demuxer computes it: frames over the summed sample durations.
    fps = frames * timescale / ticks
    return VideoInfo(duration / scale, fps, width, height, _rotation(moov, track["tkhd"], mvhd))
