"""The in-process header readers held to ffmpeg's own reading, and sampling right whatever a header says."""
import functools
import os
import random
import re
import subprocess

import numpy as np
import pytest

from cache import open_cache
from extract import decode, sampling
from extract.aviheader import read_avi_info
from extract.batch import sample_videos
from extract.mp4header import read_keyframes, read_mp4_info
from extract.probe import VideoError, VideoInfo, last_error_line, probe
from tests.conftest import REAL_VIDEOS, run_cli
from tests.header_media import find_box, long_clip, make_all, set_avi_height_zero, set_stts_count
from extract.ffmpeg_bin import ffmpeg_exe
from tests.helpers_video import ffmpeg
from tests.limited import run_limited

pytestmark = pytest.mark.slow

N = 8
DURATION_TOLERANCE = 0.05   # s: ffmpeg prints centiseconds


@pytest.fixture(scope="module")
def media(tmp_path_factory, real_videos):
    """{name: path}: the generated odd layouts and the eight real clips."""
    made = make_all(os.fspath(tmp_path_factory.mktemp("headers")))
    return {**made, **{os.path.basename(p): p for p in real_videos}}


@functools.lru_cache(maxsize=None)
def _truth(path: str):
    """ffmpeg's reading of the file, and what a full decode shows: (VideoInfo, size, first, last pts)."""
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path, "-vf", "showinfo=checksum=0", "-fps_mode",
                          "passthrough", "-f", "null", "-"], capture_output=True, text=True, check=True)
    pts = [float(x) for x in re.findall(r"pts_time:\s*([-0-9.e]+)", out.stderr)]
    w, h = re.search(r"pts_time:.*? s:(\d+)x(\d+)", out.stderr).groups()
    return probe(path), (int(w), int(h)), min(pts), max(pts)


def _agrees(ours: VideoInfo, theirs: VideoInfo) -> bool:
    size = lambda i: sampling.displayed_size(i.width, i.height, i.rotation)
    return (size(ours) == size(theirs) and abs(ours.duration - theirs.duration) <= DURATION_TOLERANCE
            and (theirs.rotation - ours.rotation) % 360 == 0)


def test_header_readers_agree_with_ffmpeg_or_step_aside(media):
    """Where a reader answers, it says what ffmpeg says (size after rotation, rotation, duration, fps);
    layouts it cannot be sure of (fragments, delaying edits, lying counts) it leaves to ffmpeg."""
    answered = set()
    for name, path in media.items():
        ours = read_mp4_info(path) or read_avi_info(path)
        if ours is None:
            continue
        answered.add(name)
        theirs, shown, _, _ = _truth(path)
        if name == "cropped.mp4":       # the crop lives in the H.264 bitstream: only a decoder sees it
            assert not _agrees(ours, theirs)
            continue
        assert _agrees(ours, theirs), (name, ours, theirs)
        assert ours.fps == pytest.approx(theirs.fps, rel=0.01), (name, ours, theirs)
        assert sampling.displayed_size(ours.width, ours.height, ours.rotation) == shown, name
    stepped_aside = {"frag_keyframe.mp4", "frag_every_frame.mp4", "frag_empty_moov.mp4", "offset60.mp4",
                     "wrong_count.avi", "start3601.ts", "vp9.webm"}
    assert not answered & stepped_aside
    # Fast where it is right: every other MP4/MOV and the plain AVIs are read in-process.
    assert {"faststart.mp4", "plain.mp4", "edit_cut.mp4", "movie_rot90.mp4", "movie_rot180.mp4",
            "movie_rot270.mp4", "track_rot90.mp4", "hevc.mp4", "vp9.mp4", "mjpeg.mov", "prores.mov",
            "bframes.mp4", "vfr.mp4", "demo_demo.mp4", "plain.avi"} <= answered


def test_samples_match_what_ffmpeg_decodes(media):
    """Every file, sampled as the workers sample it: the frame size ffmpeg decodes, rows spanning the
    decoded frames, times on the container's timeline; a header the decode contradicts is reported."""
    names = sorted(media)
    samples = dict(zip(names, sample_videos([media[k] for k in names], N)))
    for name in names:
        s = samples[name]
        assert not isinstance(s, Exception), (name, s)
        theirs, shown, first, last = _truth(media[name])
        assert sampling.displayed_size(s.info.width, s.info.height, s.info.rotation) == shown, name
        step, frame = s.info.duration / N, 1 / theirs.fps
        # The duration reaches the last frame (give or take one frame: an AVI's dropped first frame).
        assert last - frame - 1e-3 <= s.info.duration <= last + max(step, 0.25), (name, s.info, last)
        assert s.t.min() >= first - 1e-3 and s.t.max() <= s.info.duration + 1e-3, (name, s.t)
        assert s.t.min() <= first + step and s.t.max() >= last - 1.5 * step, (name, s.t, first, last)
        assert (s.fallback != "") == (name in {"cropped.mp4", "wrong_count.avi"}), (name, s.fallback)
    assert "decoded 128x120" in samples["cropped.mp4"].fallback
    assert "frames run to" in samples["wrong_count.avi"].fallback


def test_rotation_in_mvhd_turns_the_picture_like_the_track_matrix(media):
    """The movie matrix turns the frames as ffmpeg does: same pictures as the same turn in the track."""
    movie, track = (decode.sample_video(media[f"{w}_rot270.mp4"], 4) for w in ("movie", "track"))
    assert movie.info.rotation == pytest.approx(90.0) and track.info.rotation == pytest.approx(-90.0)
    # 270 in the movie matrix written counter-clockwise = -90 written clockwise by -display_rotation.
    plain = decode.sample_video(media["movie_rot180.mp4"], 4)
    upright = decode.sample_video(media["plain.mp4"], 4)
    assert np.abs(plain.frames.astype(int) - upright.frames[:, ::-1, ::-1].astype(int)).mean() < 8
    assert np.abs(plain.frames.astype(int) - upright.frames.astype(int)).mean() > 20


@pytest.fixture(scope="module")
def offset_clips(tmp_path_factory):
    """70 s clips that start late on the container's clock: MP4 with a 60 s edit-list offset, MPEG-TS at 3601 s."""
    folder = tmp_path_factory.mktemp("offsets")
    base = long_clip(os.fspath(folder / "base.mp4"), 70)
    mp4, ts = os.fspath(folder / "offset60.mp4"), os.fspath(folder / "start3601.ts")
    ffmpeg("-i", base, "-c", "copy", "-output_ts_offset", "60", mp4)
    ffmpeg("-i", base, "-c", "copy", "-output_ts_offset", "3601", "-f", "mpegts", ts)
    return base, mp4, ts


def test_seek_and_pass_share_one_timeline(offset_clips):
    """Both strategies put targets and stored times on the same zero (the container's start), so a
    seek on a late-starting file samples the same moments a pass does."""
    for path in offset_clips:
        one_pass = decode.sample_video(path, N, strategy="pass")
        seek = decode.sample_video(path, N, strategy="seek")
        assert one_pass.n_distinct == N and seek.n_distinct == N, path
        assert np.abs(one_pass.t - seek.t).max() <= 0.1, (path, one_pass.t, seek.t)
        assert abs(one_pass.info.duration - 70) < 0.1 and one_pass.t.max() < 70
    # MPEG-TS seeks land on nearby keyframes, not on the target: those files are sampled by one pass.
    assert decode.sample_video(offset_clips[2], N, strategy="seek").strategy == "pass"
    assert decode.sample_video(offset_clips[0], N, strategy="seek").strategy == "seek"


def test_bad_headers_fail_alone_with_a_reason(media, tmp_path):
    """AVI with height 0 and MOV without stss whose stts count lies: each is that file's one-line
    failure (or a right sample), never an escaped exception that takes its batch-mates down."""
    zero = set_avi_height_zero(media["plain.avi"], os.fspath(tmp_path / "zero_height.avi"))
    huge = set_stts_count(media["mjpeg.mov"], os.fspath(tmp_path / "huge_count.mov"), 0x7FFFFFF0)
    assert read_avi_info(zero) is None and read_mp4_info(huge) is None
    assert read_keyframes(huge) is None           # no 16 GiB np.arange from a four-byte lie
    paths = [media["plain.mp4"], zero, huge, media["faststart.mp4"]]
    out = sample_videos(paths, N)
    assert not isinstance(out[0], Exception) and not isinstance(out[3], Exception)
    for r in out[1:3]:
        if isinstance(r, Exception):
            assert isinstance(r, VideoError) and "\n" not in str(r) and " " in str(r), r
        else:
            assert r.n_distinct >= 1 and r.t.max() <= r.info.duration + 1e-3


def test_unexpected_errors_read_as_one_line_reasons():
    """What iter_samples or a failed Dask task stores for a video: words, never a bare class name."""
    from distributed.scheduler import KilledWorker
    from extract.probe import describe_failure
    from extract.worker_tasks import task_failure
    assert str(describe_failure(ZeroDivisionError("division by zero"))).startswith("could not be sampled: division")
    assert "out of memory" in str(describe_failure(MemoryError()))
    assert str(describe_failure(PermissionError(13, "Permission denied"))) == "cannot read: Permission denied"
    assert "worker sampling it died" in task_failure(KilledWorker("task", "worker", 3))
    for why in (task_failure(ValueError()), task_failure(KeyError("x"))):
        assert " " in why and "\n" not in why and not why.startswith(("ValueError", "KeyError"))


CROP_FAILURE = """[Parsed_crop_1 @ 0x7f0f7400f540] Invalid too big or non positive size for width '224' or height '224'
[Parsed_crop_1 @ 0x7f0f7400f540] Failed to configure input pad on Parsed_crop_1
[vf#0:0 @ 0x55a567e68400] Error reinitializing filters!
[vf#0:0 @ 0x55a567e68400] Task finished with error code: -22 (Invalid argument)
[vf#0:0 @ 0x55a567e68400] Terminating thread with return code -22 (Invalid argument)
[vost#0:0/wrapped_avframe @ 0x5] [enc:wrapped_avframe @ 0x5] Could not open encoder before EOF
[out#0/null @ 0x55a567e6c4c0] Nothing was written into output file, because at least one of its streams received no packets.
Conversion failed!
"""


def test_failure_reason_quotes_ffmpegs_specific_line(media):
    assert last_error_line(CROP_FAILURE).startswith("Invalid too big or non positive size")
    # A real run: frames decoded at a size the crop cannot fit (as when a header's size is far off).
    wrong = sampling.Geometry(20, 20, 0, 0)
    with pytest.raises(VideoError) as err:
        decode.decode_pass(media["plain.mp4"], probe(media["plain.mp4"]), N, wrong, 1, 60.0)
    assert "Invalid too big or non positive size" in str(err.value) and "Conversion failed" not in str(err.value)


def test_extract_caches_every_file_over_its_real_duration(media, tmp_path):
    """`extract` over the odd files: each cached with rows spanning what ffmpeg decodes, and
    `python -m cache validate` passes on the cache it wrote (the real clips: test_extract_real)."""
    src = tmp_path / "src" / "odd"
    src.mkdir(parents=True)
    odd = {name: path for name, path in media.items() if os.path.dirname(path) != REAL_VIDEOS}
    for name, path in odd.items():
        os.symlink(path, src / name)
    out = tmp_path / "odd.h5"
    res = run_cli("-m", "extract", os.fspath(src.parent), "--out", os.fspath(out), "--clip-model", "random:tiny",
                  "--frames", str(N), "--workers", "1", "--no-progress", check=False)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert run_cli("-m", "cache", "validate", os.fspath(out), check=False).returncode == 0
    with open_cache(os.fspath(out)) as r:
        assert not r.failures and set(r.ids) == {f"odd/{n}" for n in odd}
        for vid, t, dur in zip(r.ids, r.times(), r.duration):
            _, _, first, last = _truth(media[vid.split("/", 1)[1]])
            step = dur / N
            assert t.min() <= first + step and t.max() >= last - 1.5 * step and dur >= last - 0.04, (vid, t, last)


# ---- seeded mutation fuzz of the in-process readers --------------------------------------------

MUTANTS = 240


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


def _read_all(path: str):
    """What extraction learns from a header, in-process, in a child: (info, keyframe count, plan info)."""
    info = read_mp4_info(path) or read_avi_info(path)
    kf = read_keyframes(path)
    plan = None
    if info is not None:          # (otherwise plan_video only runs ffmpeg's reading)
        try:
            plan = decode.plan_video(path, N, decode.Deadline(20)).info
        except VideoError as exc:
            plan = str(exc)
    return info, None if kf is None else len(kf), plan


def _header_spans(path: str) -> list:
    """Where the header lives: the moov box of an MP4/MOV; the hdrl chunks and the idx1 index of an AVI."""
    data = open(path, "rb").read()
    if data[:4] == b"RIFF":
        return [(12, min(len(data), 8192)), (data.rindex(b"idx1"), len(data))]
    moov = find_box(data, [b"moov"])
    return [(moov, moov + int.from_bytes(data[moov:moov + 4], "big"))]


def test_mutated_headers_never_escape_or_mislead(media, tmp_path):
    rng = random.Random(14)
    bases = [media[k] for k in ("plain.mp4", "faststart.mp4", "mjpeg.mov", "plain.avi", "track_rot90.mp4")]
    disagreed, answered = [], 0
    for k in range(MUTANTS):
        base = bases[k % len(bases)]
        path = os.fspath(tmp_path / f"m{k}{os.path.splitext(base)[1]}")
        lo, hi = rng.choice(_header_spans(base))
        open(path, "wb").write(_mutate(open(base, "rb").read(), rng, lo, hi))
        status, value = run_limited(_read_all, path, seconds=20, memory=1 << 30)
        assert status == "ok", (k, base, status, value)       # no exception but VideoError, no hang, no blow-up
        info = value[0]
        if info is None:
            continue
        answered += 1
        try:
            theirs = probe(path)
        except VideoError:
            theirs = None
        if theirs is None or not _agrees(info, theirs):
            disagreed.append((path, theirs))
    print(f"{MUTANTS} mutants: {answered} read in-process, {len(disagreed)} of those read otherwise by ffmpeg")
    assert answered >= MUTANTS // 4            # the mutants reach the readers, not only their first check
    # Where the reader answered and ffmpeg reads otherwise, sampling must not keep the reader's answer.
    for path, theirs in disagreed:
        got = sample_videos([path], N)[0]
        if isinstance(got, Exception):
            assert isinstance(got, VideoError) and "\n" not in str(got)
            continue
        # Sampled with ffmpeg's reading (re-planned, or its duration corrected from the frames), or
        # with one the frames showed to be righter than ffmpeg's header (said so in `fallback`).
        assert theirs is not None, (path, got.info)
        assert sampling.displayed_size(got.info.width, got.info.height, got.info.rotation) == \
            sampling.displayed_size(theirs.width, theirs.height, theirs.rotation), (path, got.info, theirs)
        assert _agrees(got.info, theirs) or got.fallback, (path, got.info, theirs)
