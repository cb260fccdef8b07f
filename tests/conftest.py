"""Shared pytest fixtures: the real fixture clips, and one demo set + cache built per session."""
import glob
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Nothing downloads at test time: a named model's weights fail at once (the download path is tested
# against a local server in tests/test_backbones_weights.py, which clears this for its own runs).
os.environ["CLIPVID_OFFLINE"] = "1"
REAL_VIDEOS = os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "real_videos")


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


# The `slow` tier (pyproject registers the marker): `./run_tests.sh -m "not slow"` is the unit tier.
# Slow = over ~10 s each on a 2-core machine (measured with --durations=0): real Dask clusters,
# kills and interrupts of real runs, whole pipelines, a browser. Tests that use the session demo set
# (rendered and extracted once) are slow wherever they are.
SLOW_MODULES = {
    "test_pipeline_e2e", "test_evaluate_end_to_end", "test_hostile_kill", "test_hostile_disk", "test_train_demo",
    "test_interrupts", "test_hostile_dask", "test_hostile_names", "test_hostile_report", "test_evaluate_degenerate",
    "test_extract_headers", "test_hostile_videos", "test_extract_real", "test_extract_cluster",
    "test_hostile_checkpoints", "test_extract_failures", "test_extract_identity", "test_evaluate_serve",
    "test_hostile_args", "test_evaluate_report", "test_predict", "test_evaluate_seeds",
}
SLOW_TESTS = {
    "test_train_log_has_one_line_per_epoch_and_no_redraws", "test_train_on_a_terminal_draws_bars",
    "test_errors_are_one_line_with_exit_status", "test_training_needs_only_the_cache",
    "test_sigkill_during_compaction", "test_sigkill_during_appends_then_resume",
    "test_search_schema1_cache_made_before_shards", "test_clipvid_runs_each_stage_from_any_folder",
    "test_hostile_cache_random_corruption_never_a_traceback", "test_hostile_reader_while_writer_appends",
    "test_hostile_csv_extract_keeps_good_and_records_unknown", "test_csv_whose_paths_resolve_nowhere_names_the_resolved_path",
    "test_extract_cuda_without_cuda_is_a_usage_error", "test_search_refuses_other_weights",
    "test_search_ranks_target_first_with_its_best_moment", "test_batch_equals_each_video_alone",
    "test_iter_samples_yields_every_index_once",
    "test_torch_linear_probe_matches_scikit_learn_on_10k_videos_of_400_classes",
    "test_report_open_set_equals_what_training_printed",
    "test_each_benchmark_module_has_help_and_runs_nothing",
}
SLOW_FIXTURES = {"demo_dir", "demo_cache", "demo_pairs"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if (module in SLOW_MODULES or getattr(item, "originalname", item.name) in SLOW_TESTS
                or SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))):
            item.add_marker(pytest.mark.slow)
