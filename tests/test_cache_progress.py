"""Building a schema-1 video index and compacting report through the one progress display: plain
lines in a log (no `\\r` redraws), nothing under --quiet."""
import os

import numpy as np

from cache.reader import open_cache
from cache.schema import make_settings
from cache.writer import CacheWriter
from clipvid import progress as P
from conftest import ROOT, run_cli
from tests.schema1 import write_schema1

N, D = 4, 8
SETTINGS = make_settings("some-model", "w" * 64, False, D, N, {"v": 1}, ["a photo of {}."], "/videos")


def test_schema1_index_build_uses_the_progress_display(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr(P, "INTERVAL", 0.0)   # a line for every block, so the few blocks here all show
    emb = np.random.default_rng(0).normal(size=(3000, N, D))   # [V, N, D]: three blocks of 1024
    for quiet in (True, False):
        path = str(tmp_path / f"old-{quiet}.h5")
        write_schema1(path, emb, [0] * len(emb), ["a"], np.eye(1, D))
        with open_cache(path) as r:
            assert r.video_index(progress=not quiet).shape == (len(emb), D)
        err = capsys.readouterr().err
        if quiet:
            assert err == ""
            continue
        lines = err.splitlines()
        assert "\r" not in err and len(lines) >= 2, err
        assert all(line.startswith(f"{path}: building the video index: ") for line in lines), lines
        assert lines[-1].startswith(f"{path}: building the video index: 3000/3000 video") and lines[-1].endswith("done")


def test_compact_command_honours_quiet_and_writes_plain_lines(tmp_path):
    paths = []
    for name in ("quiet", "log"):
        path = tmp_path / f"{name}.h5"
        w = CacheWriter(os.fspath(path), SETTINGS, shard_bytes=5 * N * D * 2)   # 5 videos a shard
        w.set_classes(["a"], np.eye(1, D))
        for i in range(12):
            w.add_video(f"v{i}", np.full((N, D), i, np.float16), np.linspace(0, 1, N), "a", n_distinct=N, duration=1.0)
        w.close()
        paths.append(os.fspath(path))
    env = dict(os.environ, CLIPVID_PROGRESS_INTERVAL="0", PYTHONPATH=ROOT)
    env.pop("TQDM_DISABLE", None)
    quiet = run_cli("-m", "cache", "compact", paths[0], "--quiet", env=env, check=False)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    shown = run_cli("-m", "cache", "compact", paths[1], env=env, check=False)
    assert shown.returncode == 0, shown.stderr
    assert "\r" not in shown.stderr and shown.stderr.strip(), shown.stderr
    assert shown.stderr.splitlines()[-1].startswith(f"{paths[1]}: compacting: 12/12 video")
