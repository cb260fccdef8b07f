"""A Dask worker killed mid-run: its videos are done again on the other worker and the run completes."""
import os
import signal
import subprocess
import sys
import time

import pytest

from cache.reader import open_cache
from hostile_media import FAST, ROOT, cache_cli, clip, kill_group, wait_for
from tests.helpers_video import free_port, listening

pytestmark = pytest.mark.slow

DASK = os.path.join(os.path.dirname(sys.executable), "dask")
VIDEOS = [f"c{i % 2}/v{i}.mp4" for i in range(24)]   # 8 tasks of 3 videos


def _spawn(*args):
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=ROOT)
    return subprocess.Popen([DASK, *args], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def cluster():
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [_spawn("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")]
    wait_for(lambda: listening(port), procs[0], what=f"the scheduler listening on {address}")
    worker = ("worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--memory-limit", "0")
    procs += [_spawn(*worker, "--name", "doomed"), _spawn(*worker, "--name", "survivor")]
    try:
        from dask.distributed import Client
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)   # both registered before the run starts
        yield address, procs[1], procs[2]
    finally:
        for p in procs:
            kill_group(p)


def test_hostile_worker_killed_mid_run(tmp_path, cluster):
    address, doomed, survivor = cluster
    for vid in VIDEOS:
        os.makedirs(tmp_path / "src" / os.path.dirname(vid), exist_ok=True)
        clip(tmp_path / "src" / vid, 8.0, "480x360", 25)   # ~0.1 s each to decode: the run outlasts the kill
    out = tmp_path / "d.h5"
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=ROOT)
    run = subprocess.Popen([sys.executable, "-m", "extract", os.fspath(tmp_path / "src"), "--out", os.fspath(out),
                            *FAST, "--frames", "32", "--scheduler", address], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    from dask.distributed import Client
    with Client(address, timeout="30s") as client:
        doomed_addr = next(a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "doomed")
        deadline = time.time() + 120
        while time.time() < deadline and run.poll() is None and not any(
                "videos_task" in str(k) for k in client.processing().get(doomed_addr, ())):
            time.sleep(0.02)
        busy = [k for k in client.processing().get(doomed_addr, ()) if "videos_task" in str(k)]
        running = run.poll() is None     # checked before the strike: kill_group then waits for orphans
        if busy:
            kill_group(doomed)   # while it holds a video
    assert busy and running, "the doomed worker never got a video"
    stdout, stderr = run.communicate(timeout=300)
    assert doomed.returncode == -signal.SIGKILL and survivor.poll() is None
    assert run.returncode == 0, stderr
    assert "cached" in stdout and "failed 0" in stdout, stdout
    assert cache_cli("validate", out).returncode == 0
    with open_cache(os.fspath(out)) as r:
        assert sorted(r.ids) == sorted(VIDEOS) and r.failures == []
