"""Bad videos among good ones, resume, --retry-failed, and refusing a cache made with other settings."""
import os
import stat

import numpy as np
import pytest

from cache import open_cache
from clipvid.errors import EXIT_DATA, EXIT_OK, EXIT_PARTIAL
from cache.validate import validate
from tests.conftest import run_cli
from tests.helpers_video import ffmpeg, make_video

pytestmark = pytest.mark.slow

N = 8


def _extract(source, out, *extra, check=False):
    return run_cli("-m", "extract", str(source), "--out", str(out), "--clip-model", "random:tiny",
                   "--frames", str(N), "--workers", "1", "--no-progress", *extra, check=check)


@pytest.fixture(scope="module")
def broken_source(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken")
    good, bad = root / "good", root / "bad"
    good.mkdir(), bad.mkdir()
    for k in range(3):
        make_video(good / f"clip{k}.mp4", seconds=1, fps=10)
    whole = make_video(root / "whole.mp4", seconds=2, fps=25)
    data = open(whole, "rb").read()
    os.unlink(whole)
    (bad / "empty.mp4").write_bytes(b"")
    (bad / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (bad / "random.mp4").write_bytes(np.random.default_rng(0).bytes(50_000))
    (bad / "text.avi").write_text("this is not a video\n")
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", str(bad / "audio_only.mp4"))
    (bad / "folder.mp4").mkdir()
    unreadable = bad / "unreadable.mp4"
    unreadable.write_bytes(data)
    os.chmod(unreadable, 0)
    return root


BAD = {"bad/empty.mp4", "bad/truncated.mp4", "bad/random.mp4", "bad/text.avi",
       "bad/audio_only.mp4", "bad/folder.mp4", "bad/unreadable.mp4"}


def test_bad_videos_are_recorded_and_good_ones_cached(broken_source, tmp_path):
    out = tmp_path / "c.h5"
    res = _extract(broken_source, out)
    assert res.returncode == EXIT_PARTIAL, res.stderr
    assert validate(str(out)) == []
    # Root reads a chmod-0 file anyway; then it is simply one more good video.
    readable = {"bad/unreadable.mp4"} if os.geteuid() == 0 else set()
    with open_cache(str(out)) as r:
        assert set(r.ids) == {f"good/clip{k}.mp4" for k in range(3)} | readable
        reasons = dict(r.failures)
    assert set(reasons) == BAD - readable
    for vid, why in reasons.items():
        assert why and "\n" not in why and len(why) < 400, (vid, why)
        assert f"failed: {vid}: " in res.stderr
    assert "empty" in reasons["bad/empty.mp4"]
    assert "directory" in reasons["bad/folder.mp4"]
    assert "no video stream" in reasons["bad/audio_only.mp4"]


def test_resume_skips_cached_and_retry_failed_retries(broken_source, tmp_path):
    out = tmp_path / "c.h5"
    _extract(broken_source, out)
    again = _extract(broken_source, out)
    good = 4 if os.geteuid() == 0 else 3   # root can read the chmod-0 file
    assert f"cached 0, skipped {good} already cached" in again.stdout
    assert again.returncode == EXIT_PARTIAL
    # Mend one failure, then --retry-failed picks it up and drops it from /failures.
    target = broken_source / "bad" / "text.avi"
    os.unlink(target)
    make_video(target, seconds=1, fps=10, extra=("-f", "avi"))
    mended = _extract(broken_source, out, "--retry-failed")
    assert "cached 1" in mended.stdout
    with open_cache(str(out)) as r:
        assert "bad/text.avi" in set(r.ids)
        assert "bad/text.avi" not in dict(r.failures)
    assert validate(str(out)) == []


def test_other_settings_are_refused(tmp_path):
    src = tmp_path / "src" / "a"
    src.mkdir(parents=True)
    make_video(src / "x.mp4", seconds=1, fps=10)
    out = tmp_path / "c.h5"
    assert _extract(src.parent, out).returncode == EXIT_OK
    res = run_cli("-m", "extract", str(src.parent), "--out", str(out), "--clip-model", "random:tiny",
                  "--frames", str(N + 1), "--workers", "1", "--no-progress", check=False)
    assert res.returncode == EXIT_DATA
    assert f"frames={N}" in res.stderr and f"frames={N + 1}" in res.stderr
    assert "Traceback" not in res.stderr


def test_csv_source_with_split_and_caption(tmp_path):
    (tmp_path / "v").mkdir()
    make_video(tmp_path / "v" / "a.mp4", seconds=1, fps=10)
    make_video(tmp_path / "v" / "b.mp4", seconds=1, fps=10, src="testsrc")
    (tmp_path / "list.csv").write_text(
        "path,label,split,caption\r\nv/a.mp4,jumping,train,a person jumps\r\n"
        "v/b.mp4,running,test,\"someone runs, fast\"\r\nv/a.mp4,jumping,train,dup\r\n", encoding="utf-8-sig")
    out = tmp_path / "c.h5"
    res = _extract(tmp_path / "list.csv", out)
    assert res.returncode == EXIT_OK, res.stderr
    assert "listed more than once" in res.stderr
    with open_cache(str(out)) as r:
        rows = {i: (r.class_names[l], s, c) for i, l, s, c in zip(r.ids, r.labels, r.splits, r.captions)}
    assert rows == {"v/a.mp4": ("jumping", "train", "a person jumps"),
                    "v/b.mp4": ("running", "test", "someone runs, fast")}


def test_kinetics_csv_finds_downloaded_clips(tmp_path):
    clips = tmp_path / "clips" / "train"
    clips.mkdir(parents=True)
    make_video(clips / "abcdefghijk_000010_000020.mp4", seconds=1, fps=10)
    (tmp_path / "kinetics.csv").write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "arm wrestling,abcdefghijk,10,20,train\nabseiling,missing0000,0,10,validate\n")
    out = tmp_path / "k.h5"
    res = _extract(tmp_path / "kinetics.csv", out, "--videos", str(tmp_path / "clips"))
    assert res.returncode == EXIT_PARTIAL
    with open_cache(str(out)) as r:
        assert list(r.ids) == ["train/abcdefghijk_000010_000020.mp4"]
        assert r.class_names == ["abseiling", "arm wrestling"] and r.labels[0] == 1
        assert r.splits[0] == "train"
        assert [why for _, why in r.failures] == ["file not found"]
