"""Sampling held to ffprobe's reading and to the pictures ffmpeg's command line decodes, over odd
layouts, offsets, crops, rotations and flips, codecs, lying headers; the command line as the fallback."""
import functools
import os
import random

import numpy as np
import pytest

from cache import open_cache
from extract.convert import Converter
from extract.decode import sample_video, sample_videos
from extract.facts import VideoError
from extract.geometry import CLIP
from extract.sampling import target_times
from tests.conftest import REAL_VIDEOS, run_cli
from tests.header_media import (add_flips_and_fallback, find_box, long_clip, make_all, set_avi_height_zero,
                                set_stts_count)
from tests.helpers_video import decode_all, ffmpeg, ffprobe, nearest_rows
from tests.limited import run_limited

pytestmark = pytest.mark.slow

N = 8
MAX_PIXEL_DIFF = 6.0    # mean |difference| of 255 between our picture and ffmpeg's frame through the
                        # same resize: they differ in the order of colour conversion and scaling
                        # (measured up to 3.9 on testsrc2's sharp edges); a neighbouring frame differs by far more


@pytest.fixture(scope="module")
def media(tmp_path_factory, real_videos):
    """{name: path}: the generated odd layouts, flips, the fallback's WebP, and the eight real clips."""
    folder = os.fspath(tmp_path_factory.mktemp("headers"))
    made = add_flips_and_fallback(folder, make_all(folder))
    return {**made, **{os.path.basename(p): p for p in real_videos}}


@functools.lru_cache(maxsize=None)
def _decoded(path: str):
    """What the command line shows: every frame [F, H, W, 3] and its time [F]."""
    return decode_all(path)


def _check_against_ffmpeg(name: str, path: str, s) -> None:
    """Rows show the frames ffmpeg decodes nearest their targets, upright as ffmpeg shows them."""
    frames, times = _decoded(path)
    assert (s.info.width, s.info.height) == (frames.shape[2], frames.shape[1]), (name, s.info)
    frame = 1.0 / s.info.fps if s.info.fps > 0 else 0.1
    assert times.max() - frame - 1e-3 <= s.info.duration <= times.max() + max(s.info.duration / N, 0.25), \
        (name, s.info, times.max())
    want = nearest_rows(times, target_times(s.info.duration, N))                  # [N]
    # The same frame, or its neighbour where the target lies halfway between two (a float tie).
    assert np.abs(times[want] - s.t).max() <= frame + 1e-3, (name, times[want], s.t)
    convert, out = Converter(CLIP, []), np.empty((3, CLIP.size, CLIP.size), np.uint8)
    import av
    for row, k in enumerate(want):
        convert(av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[k]), format="rgb24"), out)
        diff = np.abs(out.transpose(1, 2, 0).astype(int) - s.frames[row].astype(int)).mean()
        nearby = [abs(times[j] - s.t[row]) < 1e-3 for j in (k - 1, k, k + 1) if 0 <= j < len(times)]
        assert diff <= MAX_PIXEL_DIFF or any(nearby), (name, row, diff)


@pytest.fixture(scope="module")
def samples(media):
    """{name: Sample or exception}: every file sampled as the workers sample it."""
    names = sorted(media)
    return dict(zip(names, sample_videos([media[k] for k in names], N)))


def test_samples_match_the_pictures_ffmpeg_decodes(media, samples):
    """Every file: the frames ffmpeg's command line decodes nearest each target, upright as it shows
    them (flips included), over the span that has pictures (said so in `note` where the header lied)."""
    for name, s in samples.items():
        assert not isinstance(s, Exception), (name, s)
        assert s.decoder == ("ffmpeg" if name == "anim.webp" else "pyav"), (name, s.decoder, s.note)
        _check_against_ffmpeg(name, media[name], s)
    assert "frames run to" in samples["wrong_count.avi"].note
    assert samples["anim.webp"].note.startswith("PyAV: ")


def test_samples_match_ffprobes_reading(media, samples):
    """The size ffprobe gives after crop and display matrix, its rotation, and its duration (or the
    frames' own, said so in `note`)."""
    for name, s in samples.items():
        if name == "anim.webp":          # Debian 12's ffprobe (5.1) predates the animated WebP demuxer
            continue
        theirs = ffprobe(media[name])
        assert (s.info.width, s.info.height) == (theirs["width"], theirs["height"]), (name, s.info, theirs)
        assert (s.info.rotation - theirs["rotation"]) % 360 == pytest.approx(0, abs=0.01), (name, s.info, theirs)
        if not s.note:
            assert s.info.duration == pytest.approx(theirs["duration"], abs=0.05), (name, s.info, theirs)


def test_flips_come_out_as_ffmpeg_shows_them(media):
    """A mirrored picture is the plain one mirrored, not turned (the matrix's flip is applied)."""
    plain = sample_video(media["plain.mp4"], 4).frames.astype(int)
    h, v = (sample_video(media[k], 4).frames.astype(int) for k in ("hflip.mp4", "vflip.mp4"))
    assert np.abs(h - plain[:, :, ::-1]).mean() < 8 and np.abs(h - plain[:, ::-1, ::-1]).mean() > 20
    assert np.abs(v - plain[:, ::-1, :]).mean() < 8 and np.abs(v - plain[:, ::-1, ::-1]).mean() > 20


def test_rotation_in_mvhd_turns_the_picture_like_the_track_matrix(media):
    # 270 written counter-clockwise in the movie matrix = 90 by -display_rotation in the track's.
    movie, track = sample_video(media["movie_rot270.mp4"], 4), sample_video(media["track_rot90.mp4"], 4)
    assert movie.info.rotation == pytest.approx(90.0) and track.info.rotation == pytest.approx(90.0)
    assert np.abs(movie.frames.astype(int) - track.frames.astype(int)).mean() < 8
    upside, upright = sample_video(media["movie_rot180.mp4"], 4), sample_video(media["plain.mp4"], 4)
    assert np.abs(upside.frames.astype(int) - upright.frames[:, ::-1, ::-1].astype(int)).mean() < 8


@pytest.fixture(scope="module")
def offset_clips(tmp_path_factory):
    """70 s clips that start late on the container's clock: MP4 with a 60 s offset, MPEG-TS at 3601 s."""
    folder = tmp_path_factory.mktemp("offsets")
    base = long_clip(os.fspath(folder / "base.mp4"), 70)
    mp4, ts = os.fspath(folder / "offset60.mp4"), os.fspath(folder / "start3601.ts")
    ffmpeg("-i", base, "-c", "copy", "-output_ts_offset", "60", mp4)
    ffmpeg("-i", base, "-c", "copy", "-output_ts_offset", "3601", "-f", "mpegts", ts)
    return base, mp4, ts


def test_seek_and_pass_pick_the_same_frames(offset_clips):
    """Both strategies put targets and times on one zero (the container's start) and pick the frame
    nearest each target: a seek on a late-starting file samples what a pass does."""
    for path in offset_clips:
        one_pass = sample_video(path, N, strategy="pass")
        seek = sample_video(path, N, strategy="seek")
        assert one_pass.n_distinct == N and seek.n_distinct == N, path
        assert np.abs(one_pass.t - seek.t).max() <= 1e-3, (path, one_pass.t, seek.t)
        assert np.abs(one_pass.frames.astype(int) - seek.frames.astype(int)).mean() < 1, path
        assert abs(one_pass.info.duration - 70) < 0.1 and one_pass.t.max() < 70
    assert sample_video(offset_clips[0], N, strategy="seek").strategy == "seek"


def test_bad_headers_fail_alone_with_a_reason(media, tmp_path):
    """AVI with height 0 and MOV whose stts count lies: each is that file's one-line failure (or a
    right sample), never an exception that takes its batch-mates down."""
    zero = set_avi_height_zero(media["plain.avi"], os.fspath(tmp_path / "zero_height.avi"))
    huge = set_stts_count(media["mjpeg.mov"], os.fspath(tmp_path / "huge_count.mov"), 0x7FFFFFF0)
    out = sample_videos([media["plain.mp4"], zero, huge, media["faststart.mp4"]], N)
    assert not isinstance(out[0], Exception) and not isinstance(out[3], Exception)
    for r in out[1:3]:
        if isinstance(r, Exception):
            assert isinstance(r, VideoError) and "\n" not in str(r) and " " in str(r), r
        else:
            assert r.n_distinct >= 1 and r.t.max() <= r.info.duration + 1e-3


def test_unexpected_errors_read_as_one_line_reasons():
    from distributed.scheduler import KilledWorker
    from extract.facts import describe_failure
    from extract.worker_tasks import task_failure
    assert str(describe_failure(ZeroDivisionError("division by zero"))).startswith("could not be sampled: division")
    assert "out of memory" in str(describe_failure(MemoryError()))
    assert str(describe_failure(PermissionError(13, "Permission denied"))) == "cannot read: Permission denied"
    assert "worker sampling it died" in task_failure(KilledWorker("task", "worker", 3))


def test_extract_caches_every_file_and_which_decoder_sampled_it(media, tmp_path):
    """`extract` over the odd files: each cached over what ffmpeg decodes, /videos/decoder saying
    'ffmpeg' for the WebP only PyAV cannot read, and `python -m cache validate` passes."""
    src = tmp_path / "src" / "odd"
    src.mkdir(parents=True)
    # (the animated WebP under a name the folder scan takes for a video; both builds read it by its content)
    odd = {name.replace("anim.webp", "anim_webp.mkv"): path for name, path in media.items()
           if os.path.dirname(path) != REAL_VIDEOS}
    for name, path in odd.items():
        os.symlink(path, src / name)
    out = tmp_path / "odd.h5"
    res = run_cli("-m", "extract", os.fspath(src.parent), "--out", os.fspath(out), "--clip-model", "random:tiny",
                  "--frames", str(N), "--workers", "1", "--no-progress", check=False)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert run_cli("-m", "cache", "validate", os.fspath(out), check=False).returncode == 0
    with open_cache(os.fspath(out)) as r:
        assert not r.failures and set(r.ids) == {f"odd/{n}" for n in odd}
        assert {vid: d for vid, d in zip(r.ids, r.decoder) if d != "pyav"} == {"odd/anim_webp.mkv": "ffmpeg"}
        for vid, t, dur in zip(r.ids, r.times(), r.duration):
            _, times = _decoded(odd[vid.split("/", 1)[1]])
            step = dur / N
            assert t.min() <= times.min() + step and t.max() >= times.max() - 1.5 * step, (vid, t, times.max())


# ---- seeded mutation fuzz: damaged headers never escape, hang or blow up ---------------------------

MUTANTS = 120


def _mutate(data: bytes, rng: random.Random, lo: int, hi: int) -> bytes:
    """1-3 header edits inside data[lo:hi]: a random byte, or a 4-byte field set to an extreme."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(lo, max(lo + 1, hi - 4))
        if rng.random() < 0.4:
            out[at] = rng.randrange(256)
        else:
            value = rng.choice([0, 1, 2, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, rng.randrange(1 << 32)])
            out[at & ~3:(at & ~3) + 4] = value.to_bytes(4, rng.choice(["big", "little"]))
    if rng.random() < 0.1:
        del out[rng.randrange(len(out) // 2, len(out)):]
    return bytes(out)


def _sample(path: str):
    try:
        s = sample_video(path, N, timeout=20)
        return s.decoder, s.info.duration, float(s.t.max())
    except VideoError as exc:
        assert "\n" not in str(exc)
        return str(exc)


def _header_spans(path: str) -> list:
    """Where the header lives: the moov box of an MP4/MOV; the hdrl chunks and the idx1 index of an AVI."""
    data = open(path, "rb").read()
    if data[:4] == b"RIFF":
        return [(12, min(len(data), 8192)), (data.rindex(b"idx1"), len(data))]
    moov = find_box(data, [b"moov"])
    return [(moov, moov + int.from_bytes(data[moov:moov + 4], "big"))]


def test_mutated_headers_never_escape_or_hang(media, tmp_path):
    rng = random.Random(14)
    bases = [media[k] for k in ("plain.mp4", "faststart.mp4", "mjpeg.mov", "plain.avi", "track_rot90.mp4")]
    sampled = 0
    for k in range(MUTANTS):
        base = bases[k % len(bases)]
        path = os.fspath(tmp_path / f"m{k}{os.path.splitext(base)[1]}")
        lo, hi = rng.choice(_header_spans(base))
        open(path, "wb").write(_mutate(open(base, "rb").read(), rng, lo, hi))
        status, value = run_limited(_sample, path, seconds=40, memory=1 << 30)
        assert status == "ok", (k, base, status, value)       # no exception but VideoError, no hang, no blow-up
        if not isinstance(value, str):
            sampled += 1
            assert value[2] <= value[1] + 1e-3, (k, value)      # rows inside the duration sampled over
    assert sampled >= MUTANTS // 4
