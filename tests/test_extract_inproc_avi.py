"""AVI and GIF decoded in-process (PyAV) keep the command line's frames: the same header reading
(extract.pyavheader against extract.probe), the same frame times (extract.clitimes: PyAV's made-up
presentation times switched off, libavcodec's best-effort times rebuilt), the same pictures, and no
ffmpeg process; seeks and other containers stay with the command line."""
import dataclasses
import os

import numpy as np
import pytest

from extract import batch, inproc
from extract.aviheader import read_avi_info
from extract.clitimes import CliTimes
from extract.decode import finish, sample_video
from extract.plan import Deadline, plan_video
from extract.probe import probe
from extract.pyavheader import printed_duration, printed_fps, read_pyav_info
from tests.helpers_video import counting_ffmpeg, decode_all, ffmpeg
from tests.test_extract_inproc import N, _ffmpeg_only, _same

SRC = ("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=3")
# Times 0.1 s apart, then a 0.37 s pause, then gaps growing by 0.05 s: delays of 10 to 60 cs.
UNEVEN = r"setpts='(N*0.1+if(gt(N\,10)\,0.37\,0)+if(gt(N\,20)\,(N-20)*0.05\,0))/TB'"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("inproc_avi")
    made = {
        "mpeg4_bframes.avi": (*SRC, "-c:v", "mpeg4", "-bf", "2"),
        "mpeg4_no_bframes.avi": (*SRC, "-c:v", "mpeg4", "-bf", "0"),
        "h264_bframes.avi": (*SRC, "-c:v", "libx264", "-preset", "medium", "-bf", "3", "-x264-params", "b-pyramid=normal"),
        # A second stream: the plain-AVI reader gives way, PyAV reads the header.
        "h264_bframes_audio.avi": (*SRC, "-f", "lavfi", "-i", "sine=duration=3", "-c:v", "libx264", "-preset",
                                   "ultrafast", "-bf", "2", "-c:a", "pcm_s16le"),
        # Frames 10-30 dropped: the AVI index skips them (decode times jump by 21 frames).
        "h264_gaps.avi": (*SRC, "-vf", r"select='not(between(n\,10\,30))'", "-fps_mode", "passthrough", "-c:v",
                          "libx264", "-preset", "ultrafast", "-bf", "2"),
        "uneven.gif": ("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=4", "-vf", UNEVEN, "-fps_mode", "vfr"),
    }
    out = {}
    for name, args in made.items():
        ffmpeg(*args, os.fspath(d / name))
        out[name] = os.fspath(d / name)
    ffmpeg(*SRC, "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-f", "mpegts", os.fspath(d / "clip.ts"))
    out["clip.ts"] = os.fspath(d / "clip.ts")
    return out


def _in_process(path: str):
    p = plan_video(path, N, Deadline(60))
    assert p.source == "header" and p.container in ("avi", "gif") and inproc.eligible(p), p
    stats = {}
    _, (frames, times) = inproc.decode_inproc(p, N, 1, Deadline(60), stats)
    assert stats["seeks"] == 0                   # one pass from the start
    return p, finish(frames, times, p.info, N, p.strategy)


def test_real_avi_and_gif_fixtures_decoded_in_process(real_videos):
    files = [f for f in real_videos if not f.endswith(".mp4")]
    assert sorted(os.path.splitext(f)[1] for f in files) == [".avi", ".avi", ".gif"]
    for path in files:
        p, ours = _in_process(path)
        # The plan's header reading is today's: the plain-AVI reader's, else what ffmpeg prints.
        assert p.info == (read_avi_info(path) or probe(path)), path
        _same(ours, _ffmpeg_only(path))
        _same(sample_video(path, N), ours)       # the ordinary entry point takes the same path


@pytest.mark.parametrize("name", ["mpeg4_bframes.avi", "mpeg4_no_bframes.avi", "h264_bframes.avi",
                                  "h264_bframes_audio.avi", "h264_gaps.avi", "uneven.gif"])
def test_generated_avi_and_gif_get_the_command_lines_frames(clips, name):
    path = clips[name]
    p, ours = _in_process(path)
    assert p.info == (read_avi_info(path) or probe(path))
    assert (read_avi_info(path) is None) == name.endswith(("audio.avi", ".gif"))
    _same(ours, _ffmpeg_only(path))
    if name in ("uneven.gif", "h264_gaps.avi"):  # the gaps really are uneven
        assert len(np.unique(np.round(np.diff(decode_all(path)[1]), 3))) >= 2


@pytest.mark.parametrize("name", ["h264_bframes.avi", "mpeg4_bframes.avi", "uneven.gif", "tests_data_test.avi",
                                  "tools_data_skeleton_S001C001P001R001A001_rgb.avi"])
def test_every_frame_time_is_the_command_lines(clips, real_videos, name):
    """All frames, not only the sampled ones: CliTimes over PyAV's frames (no made-up presentation
    times) against the times ffmpeg's showinfo prints; PyAV's own frame.pts differ on the H.264 and
    packed-B-frame AVIs."""
    import av
    path = {**{os.path.basename(f): f for f in real_videos}, **clips}[name]
    with av.open(path) as container:
        stream = container.streams.video[0]
        made_up = [f.pts for f in container.decode(stream)]
    with av.open(path) as container:
        container.flags &= ~av.container.Flags.gen_pts.value
        stream = container.streams.video[0]
        times = CliTimes()
        ours = [times(f.pts, f.dts, f.duration or 0) for f in container.decode(stream)]
    sec = float(stream.time_base)
    theirs = decode_all(path)[1]
    np.testing.assert_allclose(np.array(ours) * sec, theirs, atol=1e-6)
    if name.endswith(".avi") and not name.startswith("mpeg4"):   # (H.264 B-frames; MPEG-4 packed B-frames)
        assert not np.allclose(np.array(made_up, float) * sec, theirs), path


def test_avi_and_gif_start_no_process(clips, real_videos, tmp_path, monkeypatch):
    """Counted through a wrapper that logs each ffmpeg start: none for the AVIs and the GIF (neither
    header run nor decode run) with in-process decoding on; with it off, the command line's frames."""
    paths = [f for f in real_videos if not f.endswith(".mp4")] + [clips["h264_bframes_audio.avi"], clips["uneven.gif"]]
    runs = {}
    with counting_ffmpeg(tmp_path, monkeypatch) as started:
        for setting in ("1", "0"):
            monkeypatch.setenv("CLIPVID_INPROC", setting)
            runs[setting] = batch.sample_videos(paths, N), started()
    assert runs["1"][1] == 0 and runs["0"][1] > 0, {k: v[1] for k, v in runs.items()}
    for a, b in zip(*(r[0] for r in runs.values())):
        _same(a, b)


def test_seeks_and_other_containers_stay_with_the_command_line(clips, real_videos):
    avi = next(f for f in real_videos if f.endswith("test.avi"))
    seek = plan_video(avi, N, Deadline(60), strategy="seek")
    assert seek.container == "avi" and not inproc.eligible(seek)
    with pytest.raises(inproc.InprocUnsure):             # and never seeks in-process if asked to
        inproc.decode_inproc(dataclasses.replace(seek, keyframes=np.arange(0, 160, 12)), N, 1, Deadline(60))
    ts = plan_video(clips["clip.ts"], N, Deadline(60))
    assert read_pyav_info(clips["clip.ts"]) is None and ts.container == "" and not inproc.eligible(ts)
    assert ts.source == "ffmpeg"


def test_broken_gif_does_not_spoil_the_others(clips, tmp_path):
    data = open(clips["uneven.gif"], "rb").read()
    cut = tmp_path / "cut.gif"
    cut.write_bytes(data[: len(data) // 3])
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"RIFF\x10\x00\x00\x00AVI " + bytes(64))
    paths = [clips["uneven.gif"], os.fspath(cut), os.fspath(junk), clips["mpeg4_bframes.avi"]]
    got = batch.sample_videos(paths, N)
    _same(got[0], _ffmpeg_only(paths[0]))
    _same(got[3], _ffmpeg_only(paths[3]))
    assert isinstance(got[2], Exception)
    want = _ffmpeg_only_or_error(paths[1])                  # the truncated GIF: whatever the command line gives
    if isinstance(want, Exception):
        assert isinstance(got[1], Exception)
    else:
        _same(got[1], want)


def _ffmpeg_only_or_error(path):
    try:
        return _ffmpeg_only(path)
    except Exception as exc:
        return exc


def test_printed_values_match_ffmpegs_dump():
    assert printed_duration(9900000) == 9.9 and printed_duration(3433333) == 3.43
    assert printed_duration(3604995000) == 3605.0 and printed_duration(0) == 0.0
    assert printed_fps(100 / 33) == 3.03 and printed_fps(25.0) == 25.0 and printed_fps(30000 / 1001) == 29.97
    assert printed_fps(0.001) == 0.001 and printed_fps(90000.0) == 90000.0


def test_a_name_like_a_protocol_is_read_as_a_file(clips, tmp_path, monkeypatch):
    """'pipe:7.gif' in the working folder: PyAV opens the file, never file descriptor 7."""
    (tmp_path / "pipe:7.gif").write_bytes(open(clips["uneven.gif"], "rb").read())
    monkeypatch.chdir(tmp_path)
    p, ours = _in_process("pipe:7.gif")
    _same(ours, _in_process(clips["uneven.gif"])[1])
