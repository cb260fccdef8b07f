"""Checkpoints load with weights_only=True: a pickle runs nothing; another cache's or class list's head is refused."""
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from cache.reader import open_cache
from cache.schema import make_settings
from cache.writer import CacheWriter
from conftest import head_run
from hostile_media import ROOT

pytestmark = pytest.mark.slow

N, D = 8, 16


def _cache(path, classes=("jump", "run"), weights="a" * 64):
    rng = np.random.default_rng(1)
    w = CacheWriter(os.fspath(path), make_settings("m", weights, True, D, N, {"v": 1}, ["{}"]))
    w.set_classes(list(classes), rng.standard_normal((len(classes), D)))
    for i in range(12):
        w.add_video(f"v{i}.mp4", rng.standard_normal((N, D)), np.linspace(0, 1, N), classes[i % 2],
                    ["train", "val", "test"][i % 3], n_distinct=N, duration=1.0, fps=10)
    w.close()
    return os.fspath(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("ckpt")
    cache = _cache(base / "c.h5")
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "train", cache, "--head", "lstm", "--out", os.fspath(base / "runs"),
                           "--epochs", "1", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    return base


class Payload:
    """Unpickling this would create a marker file: the proof that loading executed code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_hostile_checkpoint_loads_for_its_cache(trained):
    from train.api import load_method
    with open_cache(os.fspath(trained / "c.h5")) as r:
        assert load_method(head_run(trained / "runs", "lstm"), r, device="cpu") is not None


def test_hostile_pickled_checkpoint_executes_nothing(trained, tmp_path):
    from train.api import CheckpointError, load_method
    run = tmp_path / "evil"
    os.makedirs(run)
    marker = tmp_path / "PWNED"
    torch.save({"format": "clipvid-head", "payload": Payload(os.fspath(marker))}, run / "head.pt")
    with pytest.raises(CheckpointError) as err:
        load_method(os.fspath(run), device="cpu")
    assert "not a readable clipvid checkpoint" in str(err.value) and str(run / "head.pt") in str(err.value)
    assert not marker.exists()
    with open(run / "head.pt", "wb") as f:           # a bare pickle, not even a torch zip file
        pickle.dump(Payload(os.fspath(marker)), f, protocol=2)
    with pytest.raises(CheckpointError):
        load_method(os.fspath(run), device="cpu")
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["other model", "other classes", "truncated"])
def test_hostile_checkpoint_mismatch_refused(trained, tmp_path, kind):
    from train.api import CheckpointError, load_method
    run = head_run(trained / "runs", "lstm")
    if kind == "truncated":
        shutil.copytree(run, tmp_path / "lstm")
        run = os.fspath(tmp_path / "lstm")
        os.truncate(os.path.join(run, "head.pt"), os.path.getsize(os.path.join(run, "head.pt")) // 2)
        other, expect = os.fspath(trained / "c.h5"), "not a readable clipvid checkpoint"
    elif kind == "other model":
        other, expect = _cache(tmp_path / "o.h5", weights="b" * 64), "made for another cache"
    else:
        other, expect = _cache(tmp_path / "o.h5", classes=("jump", "swim")), "another class list"
    with open_cache(other) as r, pytest.raises(CheckpointError) as err:
        load_method(run, r, device="cpu")
    assert expect in str(err.value) and "head.pt" in str(err.value) and "\n" not in str(err.value)


def test_hostile_evaluate_refuses_foreign_runs(trained, tmp_path):
    other = _cache(tmp_path / "o.h5", weights="b" * 64)
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "evaluate", other, "--runs", os.fspath(trained / "runs"), "--out",
                           os.fspath(tmp_path / "rep"), "--quiet"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)
    # The run belongs to another cache: it is skipped (listed in the report), never reported (exit 1).
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "made for another cache" in proc.stdout + proc.stderr
