"""The `clipvid` console script in .venv: it runs every stage with the modules' own options, from
any folder, and the top-level packages it imports are this checkout's (not a same-named library)."""
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from train.synthetic import write_synthetic_cache

VENV_BIN = os.path.join(ROOT, ".venv", "bin")


def _in_venv(args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def venv():
    if not os.path.exists(os.path.join(VENV_BIN, "python")):
        pytest.fail(f"no .venv in {ROOT}: run ./run_tests.sh (it sets up .venv) before this test")
    return VENV_BIN


def test_stage_packages_in_venv_are_this_checkouts(venv, tmp_path):
    code = ("import os, cache, clipvid, evaluate, extract, train; "
            "print('\\n'.join(os.path.dirname(os.path.dirname(m.__file__)) "
            "for m in (cache, clipvid, evaluate, extract, train)))")
    proc = _in_venv([os.path.join(venv, "python"), "-c", code], cwd=tmp_path)   # not from the checkout
    assert proc.returncode == 0, proc.stderr
    roots = set(proc.stdout.split())
    assert roots == {ROOT}, f"the .venv imports {roots}, not this checkout {ROOT}: run the set-up again"


@pytest.mark.slow
def test_clipvid_runs_each_stage_from_any_folder(venv, tmp_path):
    cache = os.fspath(tmp_path / "syn.h5")
    write_synthetic_cache(cache, num_classes=3, per_class=4, frames=4, dim=8, seed=0)
    clipvid = os.path.join(venv, "clipvid")
    helped = _in_venv([clipvid, "--help"], cwd=tmp_path)
    assert helped.returncode == 0 and "examples:" in helped.stdout
    for name in ("extract", "train", "evaluate", "search", "cache", "bench"):
        assert f"  {name} " in helped.stdout
    info = _in_venv([clipvid, "cache", "info", cache], cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert "videos     12 cached" in info.stdout
    trained = _in_venv([clipvid, "train", cache, "--head", "meanpool", "--out", "runs", "--quiet"], cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    made = [os.path.relpath(d, tmp_path / "runs") for d, _, files in os.walk(tmp_path / "runs")
            if "metrics.json" in files]
    assert len(made) == 1 and made[0].startswith("meanpool"), made   # RUNS/<head>-<settings>/seed<k>/
    assert _in_venv([clipvid, "extract", "--help"], cwd=tmp_path).stdout.count("--clip-model") >= 1
    wrong = _in_venv([clipvid, "trian"], cwd=tmp_path)
    assert wrong.returncode == 2 and wrong.stderr.startswith("error: clipvid: unknown command 'trian'")
