"""The benchmarks' new goals run end to end at tiny sizes and write stamped results (no timing is asserted)."""
import importlib
import json
import os

import pytest

from bench import common, report
from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path):
    """A private results folder, lock, bench cache and scale folder: nothing lands in the checkout."""
    return dict(os.environ, PYTHONPATH=ROOT, CLIPVID_BENCH_RESULTS=str(tmp_path / "results"),
                CLIPVID_BENCH_LOCK=str(tmp_path / "bench.lock"), CLIPVID_BENCH_CACHE=str(tmp_path / "cache"),
                CLIPVID_SCALE_DIR=str(tmp_path / "scale"), PYTHONWARNINGS="ignore")


def _result(env: dict, name: str) -> dict:
    """The result file a tiny run wrote, after the same check the committed ones get."""
    with open(os.path.join(env["CLIPVID_BENCH_RESULTS"], f"{name}.json")) as f:
        doc = json.load(f)
    mod = importlib.import_module(f"bench.{name}")
    assert common.check_result(doc, mod.RESULT_KEYS, mod.HEADLINES) == []
    figures = report.tables(report.load_all(env["CLIPVID_BENCH_RESULTS"]))["figures"]
    for key in doc["headlines"]:     # the report quotes every headline this bench wrote
        assert key.split()[0] in figures or name == "gpu", key
    return doc


def test_train_scale_slope_floor_and_cold_ooc(env):
    run_cli("-m", "bench.train_scale", "400", "800", "--skip-trained", "--classes", "8", "--repeats", "2", env=env,
            timeout=900)
    doc = _result(env, "train_scale")
    assert set(doc["sizes"]) == {"400", "800"}
    assert {"ooc_overhead", "baseline_vs_floor", "evaluate_rss_growth"} <= set(doc["headlines"])
    assert doc["sizes"]["400"]["ooc"]["evicted_files"] >= 1          # the disk run started cold
    assert "ooc" not in doc["sizes"]["800"]
    for size in doc["sizes"].values():
        assert size["floor_seconds"] >= size["read"]["seconds"] > 0
    assert doc["blas_gflops"] > 0 and "linear_vs_meanpool" not in doc["goals"]   # reported, not held
    assert doc["headlines"]["baseline_vs_floor"]["n"] == 2 and doc["stamp"]["repeats"] == 2
    assert all(len(size["rounds"]) == 2 for size in doc["sizes"].values())
    if "evaluate_slope" in doc:     # a round is left out only when its two reads took no longer apart (tiny caches)
        assert 1 <= doc["headlines"]["evaluate_slope"]["n"] <= 2 and "evaluate_fixed_seconds" in doc
    assert not os.listdir(env["CLIPVID_SCALE_DIR"]) or all(
        not f.endswith(".h5") for f in os.listdir(env["CLIPVID_SCALE_DIR"]))


def test_predict_overhead_pairs_and_timeline_slope(env):
    run_cli("-m", "bench.predict", "--per-class", "3", "--sizes", "100,300", "--pairs", "3", env=env, timeout=1200)
    doc = _result(env, "predict")
    assert doc["headlines"]["predict_overhead"]["n"] == 3 and len(doc["overhead"]["ratios"]) == 3
    assert doc["headlines"]["timeline_slope"]["n"] == 3
    assert doc["timeline"]["sizes"] == [100, 300] and doc["timeline"]["start_seconds"] > 0
    assert doc["stamp"]["repeats"] == 3


def test_scale_search_warm_and_cold_medians(env):
    run_cli("-c", "from bench import scale_search; scale_search.main(2000)", env=env, timeout=900)
    doc = _result(env, "scale_search")
    assert doc["headlines"]["search_ms_1m_warm"]["n"] >= 5
    assert doc["headlines"]["search_s_1m_cold"]["n"] >= 5 and doc["evicted_files"] >= 1
    assert doc["videos"] == 2000


def test_backbones_one_pass_against_one_run_each(env):
    run_cli("-m", "bench.backbones", "--videos", "2", "--repeats", "2", env=env, timeout=900)
    doc = _result(env, "backbones")
    assert set(doc["pairs"]) == {"two_geometries", "one_geometry"} and doc["stamp"]["repeats"] == 2
    assert doc["headlines"]["two_backbones_one_pass"]["n"] == 2 and doc["two_backbones_one_pass"] > 0
    assert all(r["one_pass_s"] > 0 for p in doc["pairs"].values() for r in p["rounds"])


def test_gpu_bench_runs_every_layout_and_the_default_on_the_cpu(env):
    run_cli("-m", "bench.gpu", "--device", "cpu", "--model", "random:tiny", "--clips", "6", "--images", "8",
            "--parts", "fed", "--layouts", "default,1x1", env=env, timeout=900)
    doc = _result(env, "gpu")
    fed = doc.get("fed_pyav") or doc["fed"]
    assert "error" not in fed, fed
    assert set(fed["layouts"]) == {"default", "1x1"} and fed["default_layout"]
    for lay in fed["layouts"].values():
        assert lay["videos_per_s"] > 0 and lay["videos_per_s_with_start"] > 0
    assert "default_layout_videos_per_s" in doc["headlines"]
