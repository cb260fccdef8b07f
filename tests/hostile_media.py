"""Helpers for the hostile-input suite: tiny ffmpeg-made videos and extract runs as a user makes them."""
import contextlib
import os
import signal
import subprocess
import time

from tests.conftest import run_cli
from tests.helpers_video import ffmpeg, make_video  # noqa: F401 (ffmpeg is re-exported)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ("--clip-model", "random:tiny", "--frames", "8", "--workers", "1", "--no-progress")


def clip(path, seconds: float = 1.0, size: str = "64x48", rate: int = 10, *extra: str) -> str:
    """A small moving test pattern, H.264 in whatever container the name says."""
    return make_video(path, seconds, rate, size, "testsrc", extra)


def extract(source, out, *args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """`python -m extract SOURCE --out OUT` with the fast test settings, from the checkout."""
    return run_cli("-m", "extract", os.fspath(source), "--out", os.fspath(out), *FAST, *args,
                   check=False, timeout=timeout, **kw)


def cache_cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m cache ...` from the checkout."""
    return run_cli("-m", "cache", *map(os.fspath, args), check=False, timeout=120)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The stderr of a refused command: exactly one line starting 'error:' and no traceback."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@contextlib.contextmanager
def tmpfs(folder, options: str):
    """Mount a tmpfs with `options` (e.g. 'size=2m', 'ro') on `folder`; it needs root, and says so."""
    os.makedirs(folder, exist_ok=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", os.fspath(folder)],
                           capture_output=True, text=True)
    assert mount.returncode == 0, f"this test needs to mount a tmpfs ({options}) as root: {mount.stderr}"
    try:
        yield folder
    finally:
        subprocess.run(["umount", os.fspath(folder)], check=True)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a process started with start_new_session=True and everything in its group."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
    for _ in range(100):   # orphans of the group (Dask nanny, workers) die asynchronously
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"processes of group {proc.pid} are still running after SIGKILL")


def make_clips(folder, ids, seconds) -> None:
    """One small clip per id (a relative path) under `folder`; `seconds` is a number or fn(i)."""
    for i, vid in enumerate(ids):
        os.makedirs(os.path.join(folder, os.path.dirname(vid)), exist_ok=True)
        clip(os.path.join(folder, vid), seconds(i) if callable(seconds) else seconds)


def done_ids(cache) -> set:
    """Ids the cache holds plus those its journal has recorded since: grows as a run works."""
    from clipvid.errors import CacheError
    from cache.journal import scan
    from cache.reader import open_cache
    ids = set()
    if os.path.exists(cache):
        try:
            with open_cache(os.fspath(cache)) as r:
                ids.update(str(i) for i in r.ids)
        except (CacheError, OSError):   # replaced while being opened: the next poll sees the new one
            pass
    for p in _journals(cache):
        ids.update(rec.meta["id"] for _, rec in scan(p, load_arrays=False) if rec.meta.get("kind") == "video")
    return ids


def _journals(cache) -> list:
    return [os.fspath(cache) + ".journal", os.path.join(os.fspath(cache) + ".d", "journal")]


def journal_videos(cache) -> int:
    """Videos recorded in the writer's journal so far: the observable progress of a running extract.
    The journal is `CACHE.journal` (schema 1) or `CACHE.d/journal` (schema 2)."""
    from cache.journal import scan
    return sum(rec.meta.get("kind") == "video" for p in _journals(cache) for _, rec in scan(p, load_arrays=False))


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 120.0, what: str = "progress") -> None:
    """Poll `predicate` until it holds; fail if `proc` ends or `timeout` passes first."""
    deadline = time.time() + timeout
    while not predicate():
        assert proc.poll() is None, f"the process ended (exit {proc.returncode}) before {what}"
        assert time.time() < deadline, f"no {what} within {timeout:.0f} s"
        time.sleep(0.02)
