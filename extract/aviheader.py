"""Read duration, fps and size of a plain AVI from its header chunks in-process (no ffmpeg run)."""
import os
import struct
from typing import BinaryIO, Optional

import numpy as np

from extract.probe import VideoInfo

# UCF-101 and HMDB are AVI: reading 'hdrl' here saves the ~12 ms ffmpeg header run per video.
# Anything unusual (OpenDML, audio or several streams, odd sizes) returns None: ffmpeg decides.
_HEAD_BYTES = 64 << 10
_MAX_TOP_CHUNKS = 64          # RIFF chunks walked to find idx1 (hdrl, JUNK, movi, idx1 in a plain file)
_INDEX_ENTRY = np.dtype([("id", "S4"), ("flags", "<u4"), ("offset", "<u4"), ("size", "<u4")])


def _chunks(data: bytes, start: int, end: int):
    """(fourcc, list type or b'', payload start, payload end) of the RIFF chunks in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        cc, size = struct.unpack_from("<4sI", data, pos)
        body = pos + 8
        if body + size > end:
            return
        if cc in (b"LIST", b"RIFF"):
            yield cc, data[body:body + 4], body + 4, body + size
        else:
            yield cc, b"", body, body + size
        pos = body + size + (size & 1)


def read_avi_info(path: str) -> Optional[VideoInfo]:
    """VideoInfo from the AVI header, or None when it is not a plain single-video-stream AVI."""
    try:
        with open(path, "rb") as f:
            data = f.read(_HEAD_BYTES)
            if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"AVI ":
                return None
            info = _parse(data)
            # The header's frame count is only a claim (a writer that died, or a lie): the index
            # at the end lists every frame; if the two differ, ffmpeg and the decoded frames decide.
            if info is None or _indexed_frames(f, os.fstat(f.fileno()).st_size) != round(info.duration * info.fps):
                return None
            return info
    except (OSError, struct.error, ZeroDivisionError, ValueError):
        return None


def _indexed_frames(f: BinaryIO, file_size: int) -> Optional[int]:
    """Video frames (stream 00) listed in the idx1 chunk, or None when there is none to read."""
    pos = 12
    for _ in range(_MAX_TOP_CHUNKS):
        f.seek(pos)
        head = f.read(8)
        if len(head) < 8:
            return None
        cc, size = struct.unpack("<4sI", head)
        if pos + 8 + size > file_size:
            return None
        if cc == b"idx1":
            entries = np.frombuffer(f.read(size - size % 16), _INDEX_ENTRY)   # at most the file's bytes
            ids = entries["id"]
            return int(np.count_nonzero((ids == b"00dc") | (ids == b"00db")))
        pos += 8 + size + (size & 1)
    return None


def _parse(data: bytes) -> Optional[VideoInfo]:
    hdrl = next(((s, e) for cc, kind, s, e in _chunks(data, 12, len(data)) if kind == b"hdrl"), None)
    if hdrl is None:
        return None
    streams = []
    for cc, kind, s, e in _chunks(data, *hdrl):
        if kind == b"odml":
            return None                       # OpenDML (> 1 GB): lengths live elsewhere
        if kind == b"strl":
            parts = {c: (ps, pe) for c, _, ps, pe in _chunks(data, s, e)}
            if b"strh" not in parts or b"strf" not in parts:
                return None
            streams.append(parts)
    if len(streams) != 1:
        return None                           # audio too: ffmpeg's duration is the longer stream's
    (hs, he), (fs, fe) = streams[0][b"strh"], streams[0][b"strf"]
    if he - hs < 36 or fe - fs < 12 or data[hs:hs + 4] != b"vids":
        return None
    scale, rate, start, length = struct.unpack_from("<4I", data, hs + 20)
    width, height = struct.unpack_from("<ii", data, fs + 4)
    if not (scale and rate and length and width > 0 and height) or start:
        return None
    fps = rate / scale
    return VideoInfo(length / fps, fps, width, abs(height), 0.0)
