"""Extraction killed with SIGKILL mid-run and resumed; and on a Dask scheduler and worker run as processes."""
import os
import signal
import subprocess
import sys
import time

import pytest

from cache import open_cache
from cache.journal import scan
from cache.validate import validate
from tests.conftest import ROOT, run_cli
from tests.helpers_video import free_port, listening, make_video

pytestmark = pytest.mark.slow

N = 8


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    for label in ("left", "right"):
        (root / label).mkdir()
        for k in range(12):
            make_video(root / label / f"v{k:02d}.mp4", seconds=1, fps=10, size="96x64")
    return root


def _cmd(source, out, *extra):
    return [sys.executable, "-m", "extract", str(source), "--out", str(out), "--clip-model", "random:tiny",
            "--frames", str(N), "--no-progress", *extra]


def test_sigkill_mid_run_then_resume(small_set, tmp_path):
    out = tmp_path / "c.h5"
    journal = str(out) + ".d/journal"
    proc = subprocess.Popen(_cmd(small_set, out, "--workers", "1"), cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    # Kill once a few videos are journalled: mid-run, with work saved and pending.
    while time.time() < deadline and proc.poll() is None:
        if sum(rec.meta.get("kind") == "video" for _, rec in scan(journal, load_arrays=False)) >= 6:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "extraction finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert os.path.getsize(journal) > 0
    res = run_cli(*_cmd(small_set, out, "--workers", "1")[1:], check=False)
    assert res.returncode == 0, res.stderr
    assert validate(str(out)) == []
    with open_cache(str(out)) as r:
        ids = list(r.ids)
    assert len(ids) == len(set(ids)) == 24
    assert not os.path.exists(journal)


def _wait_port(port: int, timeout: float = 60) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if listening(port):
            return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def test_existing_scheduler_and_worker_processes(small_set, tmp_path):
    port = free_port()
    dask = os.path.join(os.path.dirname(sys.executable), "dask")
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", ":0"], cwd=ROOT, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        _wait_port(port)
        procs.append(subprocess.Popen([dask, "worker", f"tcp://127.0.0.1:{port}", "--nworkers", "1",
                                       "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"],
                                      cwd=ROOT, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        out = tmp_path / "remote.h5"
        res = run_cli(*_cmd(small_set, out, "--scheduler", f"tcp://127.0.0.1:{port}")[1:], check=False)
        assert res.returncode == 0, res.stderr
        assert validate(str(out)) == []
        with open_cache(str(out)) as r:
            assert r.num_videos == 24 and r.emb().shape == (24, N, r.dim)
        # The cluster outlives the run: extraction only closed its client.
        assert all(p.poll() is None for p in procs)
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
