"""Bad arguments: a one-line message and exit status 2 before any work starts (no output, no cluster)."""
import os

import pytest

from clipvid.errors import EXIT_DATA, EXIT_USAGE
from hostile_media import ROOT, clip, one_line_error, tmpfs
from conftest import run_cli

pytestmark = pytest.mark.slow


def _extract(*args, cwd=ROOT):
    return run_cli("-m", "extract", *map(os.fspath, args), check=False, timeout=120, cwd=cwd)


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    base = tmp_path_factory.mktemp("args")
    os.makedirs(base / "videos" / "a")
    clip(base / "videos" / "a" / "v.mp4")
    return base


CASES = {
    "unknown model name": (["--clip-model", "ViT-Nope/99"], "unknown CLIP model 'ViT-Nope/99'"),
    "unknown random arch": (["--clip-model", "random:huge"], "unknown random architecture 'huge'"),
    "model file that is a folder": (["--clip-model", "/"], "unknown CLIP model '/'"),
    "zero frames": (["--frames", "0"], "--frames must be at least 1 (got 0)"),
    "negative frames": (["--frames", "-3"], "--frames must be at least 1 (got -3)"),
    "zero workers": (["--workers", "0"], "--workers must be at least 1 (got 0)"),
    "negative batch": (["--batch-size", "-1"], "--batch-size must be at least 1 (got -1)"),
    "zero timeout": (["--video-timeout", "0"], "--video-timeout must be positive"),
    "zero torch threads": (["--torch-threads", "0"], "--torch-threads must be at least 1"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_args_refused_before_work(src, case):
    extra, message = CASES[case]
    out = src / f"{case}.h5"
    proc = _extract(src / "videos", "--out", out, "--no-progress", *extra)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert message in one_line_error(proc)
    assert not [f for f in os.listdir(src) if f.startswith(case)]   # no cache, lock or journal


def test_hostile_args_missing_source(src):
    proc = _extract(src / "nowhere", "--out", src / "m.h5", "--clip-model", "random:tiny")
    assert proc.returncode == EXIT_DATA
    assert "nowhere: no such file or folder" in one_line_error(proc)
    assert not os.path.exists(src / "m.h5")


def test_hostile_args_no_source_at_all(src):
    proc = _extract("--out", src / "m.h5")
    assert proc.returncode == EXIT_USAGE and "Traceback" not in proc.stderr
    assert "required" in proc.stderr.splitlines()[-1]


def test_hostile_args_output_in_missing_folder_is_made(src):
    proc = _extract(src / "videos", "--out", src / "no" / "such" / "c.h5", "--clip-model", "random:tiny",
                    "--frames", "4", "--workers", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert os.path.isfile(src / "no" / "such" / "c.h5")


def test_hostile_args_refusal_makes_no_folder(src):
    proc = _extract(src / "videos", "--out", src / "not" / "made" / "c.h5", "--frames", "0")
    assert proc.returncode == EXIT_USAGE
    assert not os.path.exists(src / "not")


def test_hostile_args_output_is_a_folder(src):
    proc = _extract(src / "videos", "--out", src / "videos", "--clip-model", "random:tiny")
    assert proc.returncode == EXIT_USAGE
    assert "is a directory" in one_line_error(proc)


def test_hostile_args_output_in_read_only_folder(src):
    # Root may write into a mode-555 folder, so a read-only mount is the honest test; it needs root.
    with tmpfs(src / "ro", "ro,size=1m") as ro:
        proc = _extract(src / "videos", "--out", ro / "c.h5", "--clip-model", "random:tiny")
        assert proc.returncode == EXIT_USAGE
        assert "is not writable" in one_line_error(proc)
        assert os.listdir(ro) == []
