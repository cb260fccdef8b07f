"""The in-process decoder (extract.inproc, PyAV) keeps the frames the ffmpeg command line keeps:
same timestamps, same pictures, on long clips with dense and sparse keyframes, B-frames, seeks,
rotation and variable frame rate, the real fixtures; headers it cannot trust go to ffmpeg."""
import dataclasses
import os

import numpy as np
import pytest

from extract import inproc, sampling
from extract.decode import sample_planned, sample_video
from extract.mp4header import read_keyframes
from extract.plan import Deadline, plan_video
from tests.header_media import make_all
from tests.helpers_video import ffmpeg

N = 100
# Same decoder, same filters: the pictures agree bit for bit here; a different FFmpeg inside PyAV
# may round a resize otherwise, so allow a little (the fidelity tests allow 2.5 against CLIP's PIL).
MAX_MEAN_PIXEL_DIFF = 0.5


def _long(path, seconds=61, fps=30, gop=30, bframes=3, size="64x48", vf=None, vp9=False, altref=False):
    vf_args = ("-vf", vf, "-fps_mode", "vfr") if vf else ()
    # (altref: libvpx's hidden alternate reference frames, packed with a shown one in a superframe)
    vp9_mode = ("good", "-lag-in-frames", "25", "-auto-alt-ref", "1") if altref else ("realtime",)
    codec = (("-c:v", "libvpx-vp9", "-deadline", *vp9_mode, "-cpu-used", "8") if vp9 else
             ("-c:v", "libx264", "-preset", "ultrafast", "-bf", str(bframes)))
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}", *vf_args,
           *codec, "-g", str(gop), "-keyint_min", str(gop), "-pix_fmt", "yuv420p", os.fspath(path))
    return os.fspath(path)


@pytest.fixture(scope="module")
def long_clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("inproc")
    clips = {
        "dense_bframes": _long(d / "dense_bf3.mp4", gop=30, bframes=3),
        "dense_no_bframes": _long(d / "dense_bf0.mp4", gop=30, bframes=0),
        "sparse_bframes": _long(d / "sparse_bf3.mp4", gop=250, bframes=3),
        "seek_chosen": _long(d / "seek.mp4", fps=60, gop=10, bframes=0),
        "vfr": _long(d / "vfr.mp4", gop=30, vf=r"setpts=PTS+if(gt(N\,600)\,(N-600)*0.02/TB\,0)"),
    }
    ffmpeg("-display_rotation", "90", "-i", clips["dense_bframes"], "-c", "copy", os.fspath(d / "rot90.mp4"))
    ffmpeg("-ss", "0.7", "-i", clips["dense_bframes"], "-c", "copy", os.fspath(d / "edit_cut.mp4"))
    ffmpeg("-i", clips["dense_bframes"], "-c", "copy", "-movflags", "frag_keyframe", os.fspath(d / "frag.mp4"))
    clips.update(rotated=os.fspath(d / "rot90.mp4"), edit_list=os.fspath(d / "edit_cut.mp4"),
                 fragmented=os.fspath(d / "frag.mp4"))
    # Containers whose keyframe table comes from demuxing packets (extract.demux).
    clips.update(mkv_dense_bframes=_long(d / "dense_bf3.mkv", gop=30, bframes=3),
                 mkv_sparse_bframes=_long(d / "sparse_bf3.mkv", gop=250, bframes=3),
                 mkv_vfr=_long(d / "vfr.mkv", gop=30, vf=r"setpts=PTS+if(gt(N\,600)\,(N-600)*0.02/TB\,0)"),
                 webm_vp9=_long(d / "vp9.webm", gop=250, vp9=True),
                 webm_vp9_altref=_long(d / "vp9_arf.webm", gop=120, vp9=True, altref=True),
                 webm_vp9_short=_long(d / "vp9_short.webm", seconds=8, fps=25, gop=40, vp9=True))
    return clips


def _same(a, b):
    assert np.array_equal(a.t, b.t), "different frames chosen"
    assert a.frames.shape == b.frames.shape
    diff = np.abs(a.frames.astype(np.int16) - b.frames.astype(np.int16)).mean()
    assert diff <= MAX_MEAN_PIXEL_DIFF, f"mean pixel difference {diff:.2f}"


def _ffmpeg_only(path):
    p = plan_video(path, N, Deadline(120))
    return sample_planned(dataclasses.replace(p, inproc=False), N, 1, Deadline(120))


@pytest.mark.parametrize("name", ["dense_bframes", "dense_no_bframes", "sparse_bframes", "seek_chosen", "vfr",
                                  "rotated", "edit_list"])
def test_long_clips_get_the_command_lines_frames(long_clips, name):
    path = long_clips[name]
    p = plan_video(path, N, Deadline(120))
    assert inproc.eligible(p), "a long MP4 with a keyframe table is decoded in-process"
    assert p.strategy == ("seek" if name == "seek_chosen" else "pass")
    stats = {}
    _, (frames, times) = inproc.decode_inproc(p, N, 1, Deadline(120), stats)
    from extract.decode import finish
    ours = finish(frames, times, p.info, N, p.strategy)
    _same(ours, _ffmpeg_only(path))
    _same(sample_video(path, N), ours)           # the ordinary entry point takes the same path
    total = int(p.info.duration * p.info.fps)
    if name in ("dense_bframes", "dense_no_bframes", "seek_chosen", "rotated"):
        # Groups of pictures without a target are skipped, the others decoded up to their last target.
        assert stats["seeks"] > 0 and stats["decoded"] < 0.9 * total, stats
    if name == "rotated":
        assert ours.frames.shape[1:] == (224, 224, 3) and p.info.rotation in (90.0, -90.0)


@pytest.mark.parametrize("name", ["mkv_dense_bframes", "mkv_sparse_bframes", "mkv_vfr", "webm_vp9", "webm_vp9_altref",
                                  "webm_vp9_short"])
def test_matroska_and_webm_get_the_command_lines_frames(long_clips, name):
    """Headers read by ffmpeg, keyframes by demuxing the packets: decoded in-process, same frames."""
    path = long_clips[name]
    p = plan_video(path, N, Deadline(120))
    assert p.source == "ffmpeg" and p.strategy == "pass"
    assert inproc.eligible(p), "a Matroska/WebM file with a demuxed keyframe table is decoded in-process"
    gop = {"webm_vp9_short": 40, "webm_vp9_altref": 120, "webm_vp9": 250, "mkv_sparse_bframes": 250}.get(name, 30)
    if name != "mkv_vfr":            # keyframe k shows at k * gop / fps
        np.testing.assert_array_equal(p.keyframes, np.arange(0, int(p.info.duration * p.info.fps), gop))
    stats = {}
    _, (frames, times) = inproc.decode_inproc(p, N, 1, Deadline(120), stats)
    from extract.decode import finish
    ours = finish(frames, times, p.info, N, p.strategy)
    _same(ours, _ffmpeg_only(path))
    _same(sample_video(path, N), ours)
    if name == "mkv_dense_bframes":
        assert stats["seeks"] > 0 and stats["decoded"] < 0.9 * p.info.duration * p.info.fps, stats


def test_demuxed_table_only_for_matroska(long_clips, real_videos, monkeypatch):
    """MP4 keeps its stss table; AVI and GIF get none (decoded from the start: no seeks);
    CLIPVID_INPROC=0 reads none."""
    from extract.demux import demux_keyframes
    assert demux_keyframes(long_clips["fragmented"], 30.0) is None
    for path in real_videos:
        if not path.endswith(".mp4"):
            assert demux_keyframes(path, 25.0) is None, path
    assert demux_keyframes(long_clips["webm_vp9"], 30.0) is not None
    assert demux_keyframes(long_clips["webm_vp9"], 30.0, seconds=0.0) is None     # out of time: no table
    monkeypatch.setenv("CLIPVID_INPROC", "0")
    assert demux_keyframes(long_clips["webm_vp9"], 30.0) is None
    assert not inproc.eligible(plan_video(long_clips["webm_vp9"], N, Deadline(120)))


def test_fragmented_mp4_goes_to_ffmpeg(long_clips):
    """Its moov holds no usable table: the header is read by ffmpeg, and ffmpeg decodes it."""
    p = plan_video(long_clips["fragmented"], N, Deadline(120))
    assert p.source == "ffmpeg" and not inproc.eligible(p)
    _same(sample_video(long_clips["fragmented"], N), _ffmpeg_only(long_clips["dense_bframes"]))


def test_switched_off_by_environment(long_clips, monkeypatch):
    p = plan_video(long_clips["dense_bframes"], N, Deadline(120))
    monkeypatch.setenv("CLIPVID_INPROC", "0")
    assert not inproc.eligible(p)


def test_real_fixtures_read_in_process_are_decoded_in_process(real_videos):
    """MP4 with a trusted keyframe table; AVI and GIF (one pass, no table: tests/test_extract_inproc_avi.py)."""
    for path in real_videos:
        p = plan_video(path, N, Deadline(60))
        assert p.source == "header", path
        assert inproc.eligible(p), path
        assert (p.keyframes is not None) == path.endswith(".mp4"), path
        assert p.container == {".avi": "avi", ".gif": "gif"}.get(os.path.splitext(path)[1], ""), path


def _forced(path):
    """The in-process decoder on any MP4/MOV, whatever its length (eligible() keeps it to long ones)."""
    from extract.decode import finish
    p = plan_video(path, N, Deadline(60))
    p = dataclasses.replace(p, keyframes=read_keyframes(path))
    _, (frames, times) = inproc.decode_inproc(p, N, 1, Deadline(60))
    return finish(frames, times, p.info, N, p.strategy)


def test_real_mp4_fixtures_forced_in_process(real_videos):
    mp4 = [f for f in real_videos if f.endswith(".mp4")]
    assert len(mp4) >= 5
    for path in mp4:
        _same(_forced(path), _ffmpeg_only(path))


@pytest.mark.parametrize("name", ["track_rot90.mp4", "movie_rot180.mp4", "track_rot270.mp4", "vfr.mp4",
                                  "bframes.mp4", "edit_cut.mp4", "hevc.mp4", "vp9.mp4", "prores.mov"])
def test_odd_headers_forced_in_process(tmp_path_factory, name):
    folder = tmp_path_factory.getbasetemp() / "inproc_headers"
    if not folder.exists():
        folder.mkdir()
        make_all(os.fspath(folder))
    path = os.fspath(folder / name)
    _same(_forced(path), _ffmpeg_only(path))


def test_pass_rule_keeps_every_targets_nearest_frame():
    """On a constant frame rate the frames PassRule keeps hold each target's nearest frame, and
    at most one frame per target besides the first frame (the register starts at 0). A target exactly
    between two frames is decided by the printed constants' rounding, as in ffmpeg: not asked here."""
    for duration, fps in ((12.3, 29.97), (100.0, 30.0), (7.0, 24.0)):
        times = np.arange(int(duration * fps)) / fps                            # [F]
        rule = sampling.PassRule(duration, N, fps)
        kept = np.array([t for t in times if rule.keep(float(t))])
        targets = sampling.target_times(duration, N)
        assert len(kept) <= N + 1
        np.testing.assert_array_equal(kept[sampling.nearest_rows(kept, targets)],
                                      times[sampling.nearest_rows(times, targets)])


def test_time_string_matches_ffmpeg():
    assert inproc.time_string(0.0357142857) == "0.0357143"
    assert inproc.time_string(13.2333333) == "13.233333"
    assert inproc.time_string(0.4333333) == "0.433333"
