"""Small clips whose headers are odd (layouts, offsets, crops, rotations, codecs, lies), for the header tests."""
import os
import struct
from typing import Callable, Dict, List

from tests.helpers_video import ffmpeg

SRC = "testsrc2=size=160x120:rate=10:duration=2"
X264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")


def _enc(out: str, *args: str, src: str = SRC) -> str:
    ffmpeg("-f", "lavfi", "-i", src, *args, out)
    return out


def _copy(src: str, out: str, *args: str, before: tuple = ()) -> str:
    ffmpeg(*before, "-i", src, "-c", "copy", *args, out)
    return out


def find_box(data: bytes, path: List[bytes], start: int = 0, end: int = -1) -> int:
    """Offset of the box at `path` (e.g. [b'moov', b'mvhd']): where its size field starts."""
    end = len(data) if end < 0 else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size < 8:
            break
        if kind == path[0]:
            return pos if len(path) == 1 else find_box(data, path[1:], pos + 8, pos + size)
        pos += size
    raise KeyError(path)


def _rotation_matrix(degrees: int) -> bytes:
    cos, sin = {0: (1, 0), 90: (0, 1), 180: (-1, 0), 270: (0, -1)}[degrees]
    # a b u / c d v / x y w, 16.16 fixed point (u, v, w 2.30): ffmpeg writes rotation this way.
    return struct.pack(">9i", cos << 16, sin << 16, 0, -sin << 16, cos << 16, 0, 0, 0, 1 << 30)


def set_mvhd_rotation(path: str, out: str, degrees: int) -> str:
    """A copy of `path` whose movie header (mvhd) carries a rotation matrix; the track's is untouched."""
    data = bytearray(open(path, "rb").read())
    box = find_box(data, [b"moov", b"mvhd"])
    version = data[box + 8]
    matrix = box + 8 + 4 + (28 if version == 1 else 16) + 4 + 2 + 2 + 8
    data[matrix:matrix + 36] = _rotation_matrix(degrees)
    open(out, "wb").write(bytes(data))
    return out


def set_avi_frame_count(path: str, out: str, divide: int) -> str:
    """A copy of an AVI whose header frame counts (avih and strh) are `divide` times too small."""
    data = bytearray(open(path, "rb").read())
    avih = data.index(b"avih") + 8
    total = struct.unpack_from("<I", data, avih + 16)[0]
    struct.pack_into("<I", data, avih + 16, total // divide)
    strh = data.index(b"strh") + 8
    length = struct.unpack_from("<I", data, strh + 32)[0]
    struct.pack_into("<I", data, strh + 32, length // divide)
    open(out, "wb").write(bytes(data))
    return out


def make_all(folder: str) -> Dict[str, str]:
    """Every odd layout the header tests cover, as {name: path} (about 2 s each, 160x120 unless named)."""
    f = lambda name: os.path.join(folder, name)
    made: Dict[str, str] = {}
    plain = _enc(f("plain.mp4"), *X264, "-g", "5")
    steps: Dict[str, Callable[[str], str]] = {
        "faststart.mp4": lambda o: _copy(plain, o, "-movflags", "+faststart"),
        "frag_keyframe.mp4": lambda o: _copy(plain, o, "-movflags", "frag_keyframe"),
        "frag_every_frame.mp4": lambda o: _copy(plain, o, "-movflags", "frag_every_frame"),
        "frag_empty_moov.mp4": lambda o: _copy(plain, o, "-movflags", "frag_keyframe+empty_moov"),
        "edit_cut.mp4": lambda o: _copy(plain, o, before=("-ss", "0.7")),
        "offset60.mp4": lambda o: _copy(plain, o, "-output_ts_offset", "60"),
        "start3601.ts": lambda o: _copy(plain, o, "-output_ts_offset", "3601", "-f", "mpegts"),
        "cropped.mp4": lambda o: _copy(plain, o, "-bsf:v",
                                       "h264_metadata=crop_left=16:crop_right=16:crop_bottom=8"),
        "vfr.mp4": lambda o: _enc(o, "-vf", r"setpts=PTS+if(gt(N\,5)\,(N-5)*0.15/TB\,0)", "-fps_mode", "vfr",
                                  *X264),
        "bframes.mp4": lambda o: _enc(o, "-c:v", "libx264", "-preset", "veryfast", "-bf", "3",
                                      "-pix_fmt", "yuv420p"),
        "hevc.mp4": lambda o: _enc(o, "-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1",
                                   "-x265-params", "log-level=none", "-pix_fmt", "yuv420p"),
        "vp9.mp4": lambda o: _enc(o, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                                  "-b:v", "200k"),
        "vp9.webm": lambda o: _enc(o, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                                   "-b:v", "200k"),
        "mjpeg.mov": lambda o: _enc(o, "-c:v", "mjpeg", "-q:v", "8"),
        "prores.mov": lambda o: _enc(o, "-c:v", "prores_ks", "-profile:v", "0"),
        "wrong_count.avi": lambda o: set_avi_frame_count(_enc(f("plain.avi"), "-c:v", "mjpeg", "-q:v", "8"), o, 3),
    }
    for degrees in (90, 180, 270):
        steps[f"track_rot{degrees}.mp4"] = lambda o, d=degrees: _copy(plain, o, before=("-display_rotation", str(d)))
        steps[f"movie_rot{degrees}.mp4"] = lambda o, d=degrees: set_mvhd_rotation(plain, o, d)
    for name, step in steps.items():
        made[name] = step(f(name))
    made["plain.mp4"], made["plain.avi"] = plain, f("plain.avi")
    return made


def set_avi_height_zero(path: str, out: str) -> str:
    """A copy of an AVI whose headers (avih and the stream's BITMAPINFOHEADER) say the height is 0."""
    data = bytearray(open(path, "rb").read())
    avih = data.index(b"avih") + 8
    struct.pack_into("<I", data, avih + 36, 0)
    strf = data.index(b"strf") + 8
    struct.pack_into("<i", data, strf + 8, 0)
    open(out, "wb").write(bytes(data))
    return out


def set_stts_count(path: str, out: str, count: int) -> str:
    """A copy of an MP4/MOV whose video stts says its first run has `count` frames (a corrupt count)."""
    data = bytearray(open(path, "rb").read())
    stts = find_box(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stts"])
    struct.pack_into(">I", data, stts + 16, count)
    open(out, "wb").write(bytes(data))
    return out


def long_clip(out: str, seconds: int, *args: str) -> str:
    """A tiny (32x24, 25 fps) clip long enough for the seek strategy, keyframes every 10 s, plus args."""
    return _enc(out, "-c:v", "libx264", "-preset", "ultrafast", "-g", "250", *args,
                src=f"testsrc=size=32x24:rate=25:duration={seconds}")


def add_flips_and_fallback(folder: str, made: Dict[str, str]) -> Dict[str, str]:
    """Display matrices with a flip (mirrored, upside down, mirrored quarter turns), and an animated
    WebP: the command line's demuxer reads it, PyAV's libraries cannot (the fallback's case)."""
    f = lambda name: os.path.join(folder, name)
    flips = {"hflip.mp4": ("-display_hflip",), "vflip.mp4": ("-display_vflip",),
             "rot90_hflip.mp4": ("-display_rotation", "90", "-display_hflip"),
             "rot270_vflip.mp4": ("-display_rotation", "270", "-display_vflip")}
    for name, args in flips.items():
        made[name] = _copy(made["plain.mp4"], f(name), before=args)
    made["anim.webp"] = _enc(f("anim.webp"), "-c:v", "libwebp_anim", "-loop", "0", "-f", "webp")
    return made
