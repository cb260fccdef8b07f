"""Broken, odd and hanging videos: each is cached or failed with a one-line reason; the run goes on."""
import os

import numpy as np
import pytest

from cache.reader import open_cache
from hostile_media import cache_cli, clip, extract, ffmpeg

pytestmark = pytest.mark.slow

TIMEOUT = 4  # --video-timeout for this run; the hanging file must end within it


@pytest.fixture(scope="module")
def videos_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("videos")
    src = base / "src"
    os.makedirs(src)
    good = clip(src / "good.mp4")
    clip(src / "one_frame.mp4", 0.1)
    clip(src / "wide.mkv", 1, "10000x10", 5)
    clip(src / "long.mp4", 600, "32x24", 25, "-g", "250")
    ffmpeg("-display_rotation", "90", "-i", good, "-c", "copy", os.fspath(src / "rotated.mp4"))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=2", "-vf",
           r"setpts=PTS+if(gt(N\,5)\,(N-5)*0.3/TB\,0)", "-fps_mode", "vfr", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", os.fspath(src / "vfr.mp4"))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1", "-f", "lavfi", "-i",
           "sine=duration=5", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", os.fspath(src / "stops.mp4"))
    ffmpeg("-f", "lavfi", "-i", "color=c=red:size=64x48", "-frames:v", "1", "-c:v", "png", "-f", "image2",
           os.fspath(src / "zero_duration.mp4"))         # one picture, no duration in the container
    ffmpeg("-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", os.fspath(src / "audio_only.mp4"))
    open(src / "empty.mp4", "wb").close()
    data = open(good, "rb").read()
    open(src / "truncated.mp4", "wb").write(data[: len(data) // 2])
    open(src / "random.mp4", "wb").write(np.random.default_rng(0).bytes(5000))
    open(src / "text.avi", "w").write("not a video\n" * 20)
    os.mkdir(src / "directory.mp4")
    clip(src / "unreadable.mp4")
    os.chmod(src / "unreadable.mp4", 0)
    os.mkfifo(src / "fifo.mp4")
    os.mkfifo(src / "pipe.bin")                          # not a video name: never listed itself
    # A concat playlist named .mp4 that points ffmpeg at a FIFO with no writer: ffmpeg blocks forever.
    open(src / "hangs.mp4", "w").write("ffconcat version 1.0\nfile 'pipe.bin'\n")
    proc = extract(src, base / "v.h5", "--video-timeout", str(TIMEOUT))
    return base, proc


CACHED = {"good.mp4", "one_frame.mp4", "wide.mkv", "long.mp4", "rotated.mp4", "vfr.mp4", "stops.mp4",
          "zero_duration.mp4"}
FAILED = {"audio_only.mp4": "no video stream", "empty.mp4": "empty file", "truncated.mp4": "moov atom",
          "random.mp4": "moov atom", "text.avi": "Invalid data", "directory.mp4": "is a directory",
          "fifo.mp4": "not a regular file", "hangs.mp4": f"within {TIMEOUT} s"}


def test_hostile_videos_sorted_into_cached_and_failed(videos_run):
    base, proc = videos_run
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    readable = os.access(base / "src" / "unreadable.mp4", os.R_OK)   # root reads a mode-000 file
    with open_cache(os.fspath(base / "v.h5")) as r:
        assert set(r.ids) == CACHED | ({"unreadable.mp4"} if readable else set())
        fails = dict(r.failures)
    expect = dict(FAILED, **({} if readable else {"unreadable.mp4": "permission denied"}))
    assert set(fails) == set(expect)
    for vid, words in expect.items():
        assert words in fails[vid], (vid, fails[vid])
        assert "\n" not in fails[vid]
        assert f"failed: {vid}: " in proc.stderr
    assert cache_cli("validate", base / "v.h5").returncode == 0


def test_hostile_videos_odd_ones_sampled_sensibly(videos_run):
    base, _ = videos_run
    with open_cache(os.fspath(base / "v.h5")) as r:
        row = {v: i for i, v in enumerate(r.ids)}
        t = r.times()
        assert r.n_distinct[row["one_frame.mp4"]] == 1 and r.n_distinct[row["zero_duration.mp4"]] == 1
        assert abs(r.duration[row["long.mp4"]] - 600) < 1 and r.n_distinct[row["long.mp4"]] == 8
        assert np.all(np.diff(t[row["long.mp4"]]) > 60)     # spread over the ten minutes
        assert r.n_distinct[row["vfr.mp4"]] == 8 and np.all(np.diff(t[row["vfr.mp4"]]) > 0)
        # The picture stops at 1 s while audio runs to 5 s: the rows cover the pictures, not one frame.
        assert r.duration[row["stops.mp4"]] <= 1.0 and r.n_distinct[row["stops.mp4"]] >= 6
        assert r.n_distinct[row["wide.mkv"]] >= 4 and r.n_distinct[row["rotated.mp4"]] == 8
        emb = r.emb()
        assert np.isfinite(emb).all() and len({emb[row[v]].tobytes() for v in CACHED}) == len(CACHED)
        assert r.fps[row["rotated.mp4"]] == r.fps[row["good.mp4"]]   # same clip, turned: other pictures
