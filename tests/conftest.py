"""Shared pytest fixtures: the real fixture clips, and one demo set + cache built per session."""
import glob
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_VIDEOS = os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "real_videos")


def run_cli(*args, check=True, timeout=600, **kw) -> subprocess.CompletedProcess:
    """Run `python -m ...` from the checkout as a user would, capturing text output."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    out = subprocess.run([sys.executable, *args], cwd=kw.pop("cwd", ROOT), capture_output=True, text=True,
                         timeout=timeout, env=kw.pop("env", env), **kw)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


def head_run(runs, head: str, seed: int = 0) -> str:
    """The run folder `python -m train` wrote for `head` and `seed` under `runs` (RUNS/<head>-<settings>/seed<k>)."""
    found = glob.glob(os.path.join(os.fspath(runs), glob.escape(head) + "-*", f"seed{seed}"))
    assert len(found) == 1, f"expected one {head} run for seed {seed} in {runs}, found {found}"
    return found[0]


@pytest.fixture(scope="session")
def real_videos():
    """The eight real clips in ../shared/fixtures/real_videos (never copied into the project)."""
    files = sorted(os.path.join(REAL_VIDEOS, f) for f in os.listdir(REAL_VIDEOS) if not f.endswith(".md"))
    assert len(files) == 8, f"expected the eight fixture clips in {REAL_VIDEOS}"
    return files


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    """The built-in demo set with its default size and seed."""
    out = tmp_path_factory.mktemp("demo") / "videos"
    run_cli("-m", "extract.synthetic", str(out))
    return str(out)


@pytest.fixture(scope="session")
def demo_pairs(demo_dir):
    with open(os.path.join(demo_dir, "pairs.json")) as f:
        return json.load(f)["pairs"]


@pytest.fixture(scope="session")
def demo_cache(demo_dir, tmp_path_factory):
    """The demo set extracted with random:tiny CLIP weights through the real loader."""
    out = tmp_path_factory.mktemp("demo_cache") / "demo.h5"
    run_cli("-m", "extract", demo_dir, "--out", str(out), "--clip-model", "random:tiny", "--no-progress")
    return str(out)
