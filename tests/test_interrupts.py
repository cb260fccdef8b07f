"""Ctrl-C (SIGINT to the whole process group, as a terminal sends it) during real runs: one line,
exit 130, no tracebacks from Dask workers, nothing half-written; the same command then resumes."""
import os
import signal
import subprocess
import sys

import pytest

from cache.reader import open_cache
from train.cli import main as train_main
from train.synthetic import write_synthetic_cache
from hostile_media import FAST, ROOT, cache_cli, extract, journal_videos, kill_group, make_clips, wait_for
from conftest import head_run

pytestmark = pytest.mark.slow

VIDEOS = [f"c{i % 2}/v{i:02d}.mp4" for i in range(40)]


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    base = tmp_path_factory.mktemp("sigint")
    make_clips(base / "src", VIDEOS, 0.5)
    return base


def _popen(*args, env=None):
    env = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
    env.pop("PYTHONWARNINGS", None)
    env.pop("TQDM_DISABLE", None)
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


def _has_worker(pid: int) -> bool:
    """Whether `pid` has started a Dask worker process yet (the cluster is starting). Other children
    (h5py runs `uname -p` while it imports) do not count."""
    tasks = f"/proc/{pid}/task"
    try:
        children = [c for t in os.listdir(tasks) for c in open(f"{tasks}/{t}/children").read().split()]
        return any(b"multiprocessing" in open(f"/proc/{c}/cmdline", "rb").read()
                   or b"worker_python" in open(f"/proc/{c}/cmdline", "rb").read() for c in children)
    except OSError:
        return False


def test_ctrl_c_while_the_cluster_starts_is_not_lost(src, tmp_path):
    """A Ctrl-C that comes while the worker processes start (the first child exists, no video yet)
    stops the run once the start is over: one line, exit 130, no worker tracebacks."""
    cache = tmp_path / "starting.h5"
    proc = _popen("-m", "extract", src / "src", "--out", cache, *FAST)
    wait_for(lambda: _has_worker(proc.pid), proc, what="a worker process")
    status, _, err = _ctrl_c(proc)
    assert status == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted: "), err
    assert journal_videos(cache) < len(VIDEOS)


@pytest.fixture(scope="module")
def syn_cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("sigint_train") / "syn.h5"
    write_synthetic_cache(os.fspath(path), num_classes=4, per_class=12, frames=8, dim=16, seed=0)
    return path


def _wait_line(proc, prefix: str) -> list:
    """Read stderr lines until one starts with `prefix` (observable progress); returns those read."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith(prefix):
            return seen
    raise AssertionError(f"the process ended (exit {proc.wait()}) before printing {prefix!r}:\n{''.join(seen)}")


def test_ctrl_c_during_train_keeps_finished_heads_only(syn_cache, tmp_path):
    runs = tmp_path / "runs"
    proc = _popen("-m", "train", syn_cache, "--out", runs, "--head", "meanpool,lstm", "--epochs", "500",
                  "--patience", "500")
    before = _wait_line(proc, "lstm epoch 2/500")
    status, out, err = _ctrl_c(proc)
    assert status == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1] == (f"interrupted: 1 of 2 heads finished in {runs} (meanpool); "
                         "the head in training was discarded"), "".join(before) + err
    assert out.startswith("meanpool ")
    done = head_run(runs, "meanpool")
    assert sorted(os.listdir(runs)) == [os.path.basename(os.path.dirname(done))]  # no lstm folder, no partial one
    assert {"head.pt", "metrics.json", "predictions.csv", "split.json"} <= set(os.listdir(done))


def test_ctrl_c_during_evaluate_is_one_line(syn_cache, tmp_path):
    runs, report = tmp_path / "runs", tmp_path / "report"
    assert train_main([os.fspath(syn_cache), "--out", os.fspath(runs), "--head", "meanpool,maxpool",
                       "--quiet"]) == 0
    env = {"CLIPVID_PROGRESS_INTERVAL": "0"}   # a line per head scored: the progress to wait on
    proc = _popen("-m", "evaluate", syn_cache, "--runs", runs, "--out", report, env=env)
    _wait_line(proc, "scoring heads: 1/2")
    status, _, err = _ctrl_c(proc)
    assert status == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.splitlines()[-1] == f"interrupted: no report finished in {report}; run the same command again"
    assert not os.path.exists(report / "report.html")
