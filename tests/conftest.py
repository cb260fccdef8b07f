"""Shared pytest fixtures: the real fixture clips, and one demo set + cache built per session."""
import glob
import json
import os
import subprocess
import sys

import pytest

from needs import real_videos_dir, real_videos as find_real_videos

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Nothing downloads at test time: a named model's weights fail at once (the download path is tested
# against a local server in tests/test_backbones_weights.py, which clears this for its own runs).
os.environ["CLIPVID_OFFLINE"] = "1"
REAL_VIDEOS = real_videos_dir()


def run_cli(*args, check=True, timeout=600, **kw) -> subprocess.CompletedProcess:
    """Run `python -m ...` from the checkout as a user would, capturing text output. Warnings are not
    hidden: a user sees them too (they are silenced at their source)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("PYTHONWARNINGS", None)
    out = subprocess.run([sys.executable, *map(os.fspath, args)], cwd=kw.pop("cwd", ROOT), capture_output=True, text=True,
                         timeout=timeout, env=kw.pop("env", env), **kw)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(map(os.fspath, args))} exited {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


def head_run(runs, head: str, seed: int = 0) -> str:
    """The run folder `python -m train` wrote for `head` and `seed` under `runs` (RUNS/<head>-<settings>/seed<k>)."""
    found = glob.glob(os.path.join(os.fspath(runs), glob.escape(head) + "-*", f"seed{seed}"))
    assert len(found) == 1, f"expected one {head} run for seed {seed} in {runs}, found {found}"
    return found[0]


@pytest.fixture(scope="session")
def real_videos():
    """The eight real clips in $CLIPVID_REAL_VIDEOS or ../shared/fixtures/real_videos; skipped when absent."""
    return find_real_videos()


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


# The `slow` tier (pyproject registers the marker): `./run_tests.sh -m "not slow"` is the unit tier.
# Slow = over ~10 s each on a 2-core machine (measured with --durations=0): real Dask clusters, kills and
# interrupts of real runs, whole pipelines, a browser. Each such test says so itself, with
# `@pytest.mark.slow` or a module's `pytestmark = pytest.mark.slow`. The session demo set is rendered and
# extracted once, which is slow: a test that uses it without the mark is refused at collection.
DEMO_FIXTURES = {"demo_dir", "demo_cache", "demo_pairs"}


def pytest_collection_modifyitems(config, items):
    unmarked = [item.nodeid for item in items
                if DEMO_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("slow") is None]
    if unmarked:
        raise pytest.UsageError("tests that use the demo set must be marked @pytest.mark.slow: " + ", ".join(unmarked))
