"""Ctrl-C (SIGINT to the whole process group, as a terminal sends it) during real runs: one line,
exit 130, no tracebacks from Dask workers, nothing half-written; the same command then resumes."""
import os
import signal
import subprocess
import sys

import pytest

from cache.reader import open_cache
from hostile_media import FAST, ROOT, cache_cli, clip, extract, journal_videos, kill_group, wait_for

VIDEOS = [f"c{i % 2}/v{i:02d}.mp4" for i in range(40)]


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    base = tmp_path_factory.mktemp("sigint")
    for vid in VIDEOS:
        os.makedirs(base / "src" / os.path.dirname(vid), exist_ok=True)
        clip(base / "src" / vid, 0.5)
    return base


def _popen(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("PYTHONWARNINGS", None)
    return subprocess.Popen([sys.executable, *map(os.fspath, args)], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ctrl_c(proc) -> tuple:
    """Send SIGINT to the process and every child in its group, like Ctrl-C on a terminal."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        kill_group(proc)
    return proc.returncode, out, err


def test_ctrl_c_during_extract_is_one_line_then_resumes(src):
    cache = src / "c.h5"
    proc = _popen("-m", "extract", src / "src", "--out", cache, *FAST)
    wait_for(lambda: journal_videos(cache) >= 1, proc, what="a video in the journal")
    status, _, err = _ctrl_c(proc)
    assert status == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    kept = int(lines[0].split("interrupted: ", 1)[1].split(" videos kept in ")[0])
    assert lines[0] == f"interrupted: {kept} videos kept in {cache}; run the same command to resume"
    assert 1 <= kept < len(VIDEOS)
    assert cache_cli("validate", cache).returncode == 0
    with open_cache(os.fspath(cache)) as r:
        assert r.num_videos == kept
    again = extract(src / "src", cache)
    assert again.returncode == 0, again.stderr
    assert f"skipped {kept} already cached" in again.stdout
    with open_cache(os.fspath(cache)) as r:
        assert sorted(r.ids) == sorted(VIDEOS)
