"""The one progress display: bars on a terminal, plain lines in a log, one line per training epoch."""
import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from clipvid import progress as P
from train.synthetic import write_synthetic_cache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Clock:
    """A monotonic clock that moves only when the test moves it: the rate limit is checked exactly,
    whatever the load on the machine."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> _Clock:
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr(P, "INTERVAL", 5.0)
    fake = _Clock()
    monkeypatch.setattr(P, "time", fake)
    return fake


def test_log_gets_plain_lines_at_most_every_interval(clock):
    log = io.StringIO()
    with P.progress(total=6, desc="extract", unit="video", stream=log) as bar:
        for _ in range(6):
            clock.now += 2.0                          # updates 2 s apart, lines at most every 5 s
            bar.update(1)
            bar.set_postfix(failed=1)
    text = log.getvalue()
    lines = text.splitlines()
    assert "\r" not in text
    assert len(lines) == 2, lines                 # one at 6 s (3 videos), none at 8 or 10 s, then the last
    assert lines[0].startswith("extract: 3/6 video (50%), 6 s") and "~6 s left" in lines[0], lines[0]
    assert lines[1].startswith("extract: 6/6 video, 12 s") and lines[1].endswith("done (failed 1)"), lines[1]


def test_short_work_prints_nothing_in_a_log(clock):
    log = io.StringIO()
    for _ in P.progress(range(3), desc="quick", stream=log):
        clock.now += 1.0                              # 3 s in all: under the interval
    assert log.getvalue() == ""
    for _ in P.progress(range(3), desc="slow", stream=log):
        clock.now += 2.0                              # 6 s in all: the closing line is printed
    assert log.getvalue().startswith("slow: 3/3 it, 6 s") and log.getvalue().count("\n") == 1, log.getvalue()


def test_terminal_gets_a_bar(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    tty = _Tty()
    for _ in P.progress(range(4), desc="bars", stream=tty):
        pass
    assert "\r" in tty.getvalue() and "bars" in tty.getvalue()


@pytest.mark.parametrize("quiet,env", [(True, ""), (False, "1")])
def test_quiet_and_tqdm_disable_silence_both_modes(monkeypatch, quiet, env):
    monkeypatch.setenv("TQDM_DISABLE", env)
    monkeypatch.setattr(P, "INTERVAL", 0.0)
    for stream in (io.StringIO(), _Tty()):
        for _ in P.progress(range(3), desc="x", quiet=quiet, stream=stream):
            pass
        P.epoch_line("lstm", 1, 2, 0.5, 0.25, 0.1, quiet=quiet, stream=stream)
        assert stream.getvalue() == ""


def test_epoch_line_only_in_a_log(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    log, tty = io.StringIO(), _Tty()
    for stream in (log, tty):
        P.epoch_line("lstm", 3, 60, 1.23456, 0.5, 0.42, stream=stream)
    assert log.getvalue() == "lstm epoch 3/60: loss 1.2346, val top-1 0.500, 0.4 s\n"
    assert tty.getvalue() == ""


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("prog") / "syn.h5")
    write_synthetic_cache(path, num_classes=4, per_class=10, frames=8, dim=16, seed=0)
    return path


def _train_cmd(cache, out, *extra):
    return [sys.executable, "-m", "train", cache, "--out", out, "--head", "lstm", "--epochs", "3", *extra]


def _env():
    env = dict(os.environ)
    env.pop("TQDM_DISABLE", None)
    return env


@pytest.mark.slow
def test_train_log_has_one_line_per_epoch_and_no_redraws(small_cache, tmp_path):
    out = subprocess.run(_train_cmd(small_cache, str(tmp_path / "runs")), cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env=_env())
    assert out.returncode == 0, out.stderr
    assert "\r" not in out.stderr
    epochs = [line for line in out.stderr.splitlines() if line.startswith("lstm epoch ")]
    assert [e.split(":")[0] for e in epochs] == ["lstm epoch 1/3", "lstm epoch 2/3", "lstm epoch 3/3"]
    assert all("loss" in e and "val top-1" in e and e.endswith(" s") for e in epochs)
    quiet = subprocess.run(_train_cmd(small_cache, str(tmp_path / "runs2"), "--quiet"), cwd=ROOT,
                           capture_output=True, text=True, timeout=300, env=_env())
    assert quiet.returncode == 0 and "epoch" not in quiet.stderr, quiet.stderr


@pytest.mark.slow
def test_train_on_a_terminal_draws_bars(small_cache, tmp_path):
    """A real pseudo-terminal: the per-batch bars redraw in place, and no epoch lines are printed."""
    pid, fd = pty.fork()
    if pid == 0:   # child: stdout and stderr are the terminal, 120 columns wide
        try:
            fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
            os.chdir(ROOT)
            os.execve(sys.executable, _train_cmd(small_cache, str(tmp_path / "runs")), _env())
        finally:
            os._exit(99)
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:   # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "\r" in text.replace("\r\n", "\n") and "batch" in text   # redraws, not new lines
    assert "val top-1" not in text    # the per-epoch lines are for logs only
