"""SIGKILL at random points of an extraction, then resume: the cache validates and nothing is lost.

Kills land after a random number of videos reached the journal (observable progress, not a sleep),
so the test means the same on a loaded machine."""
import os
import random
import subprocess
import sys
import time

import pytest

from cache.reader import open_cache
from hostile_media import FAST, ROOT, cache_cli, done_ids, extract, kill_group, make_clips

pytestmark = pytest.mark.slow

GOOD = [f"c{i % 2}/v{i}.mp4" for i in range(8)]


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    base = tmp_path_factory.mktemp("kill")
    make_clips(base / "src", GOOD, lambda i: 1.0 + 0.1 * i)
    open(base / "src" / "c0" / "broken.mp4", "wb").write(b"\x00" * 4096)
    return base


def _start(base):
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-m", "extract", os.fspath(base / "src"), "--out",
                             os.fspath(base / "k.h5"), *FAST], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _check_whole(base, name="k.h5"):
    if os.path.exists(base / name):
        proc = cache_cli("validate", base / name)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hostile_sigkill_then_resume(src):
    rng = random.Random(20240601)
    mid_run = 0
    for trial in range(4):
        before = len(done_ids(src / "k.h5"))
        left = len(GOOD) - before
        # The first kill lands right after the first new video; the others after a random number.
        target = before + (1 if trial == 0 else rng.randint(1, max(1, left - 1)))
        proc = _start(src)
        deadline = time.time() + 120
        while len(done_ids(src / "k.h5")) < target and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        finished = proc.poll() is not None
        kill_group(proc)
        mid_run += not finished and target <= len(done_ids(src / "k.h5")) < len(GOOD)
        _check_whole(src)
    assert mid_run >= 1, "no kill landed while videos were being extracted"
    final = extract(src / "src", src / "k.h5")
    assert final.returncode == 1, final.stderr         # only the broken file fails
    assert "skipped" in final.stdout and "cached 8," not in final.stdout  # it resumed
    assert "Traceback" not in final.stderr
    _check_whole(src)
    with open_cache(os.fspath(src / "k.h5")) as r:
        assert sorted(r.ids) == sorted(GOOD)           # every good video, exactly once
        assert [i for i, _ in r.failures] == ["c0/broken.mp4"]
    leftovers = sorted(f for f in os.listdir(src) if f.startswith("k.h5") and f not in ("k.h5", "k.h5.d"))
    assert leftovers == []                             # no journal or half-written temp file left
    inside = {f.split(".", 1)[-1] for f in os.listdir(src / "k.h5.d")}
    assert inside <= {"frames.h5", "videos.h5", "lock"}, inside


def test_journal_of_a_run_killed_after_its_last_commit_is_tidied(src):
    """A kill between the manifest swap and the journal's removal leaves a journal whose records the
    cache already counts; the next run has nothing to extract, yet must replay and remove it."""
    import shutil
    from cache.reader import read_settings
    from cache.writer import CacheWriter
    out = src / "j.h5"
    assert extract(src / "src", out).returncode == 1          # the broken file fails
    writer = CacheWriter(os.fspath(out), read_settings(os.fspath(out)))
    writer.add_failure("c0/broken.mp4", "not a video")
    shutil.copy(writer.journal_path, src / "journal.bak")    # the journal as it stood at the kill
    journal = writer.journal_path
    writer.close()
    shutil.copy(src / "journal.bak", journal)
    again = extract(src / "src", out)
    assert again.returncode == 1 and "Traceback" not in again.stderr, again.stderr
    assert not os.path.exists(journal)
    _check_whole(src, "j.h5")
