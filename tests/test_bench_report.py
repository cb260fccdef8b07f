"""Generated docs: the marked tables in README.md, docs/ and bench/PERFORMANCE.md are what bench.report writes."""
import json
import os

import pytest

from bench import common, report
from tests.conftest import ROOT, run_cli


def test_committed_docs_equal_what_the_report_writes():
    stale = report.stale()
    assert stale == {}, f"run `python -m bench.report --docs`: stale {sorted(stale)}"


def test_performance_doc_has_the_generated_tables():
    with open(os.path.join(ROOT, "bench", "PERFORMANCE.md")) as f:
        text = f.read()
    for name in ("runs", "figures"):
        assert f"<!-- bench:{name} -->" in text and f"<!-- /bench:{name} -->" in text


def test_a_figure_edited_inside_a_marked_table_is_stale(tmp_path):
    blocks = {"figures": "| figure | value |\n|---|---|\n| x | 1.0 |"}
    doc = tmp_path / "README.md"
    doc.write_text("intro\n<!-- bench:figures -->\nold text\n<!-- /bench:figures -->\nafter, kept\n")
    fresh = report.render(doc.read_text(), blocks)
    assert "| x | 1.0 |" in fresh and "old text" not in fresh and fresh.endswith("after, kept\n")
    assert report.render(fresh, blocks) == fresh                    # rendering twice changes nothing
    doc.write_text(fresh.replace("| x | 1.0 |", "| x | 0.5 |"))     # a figure typed over by hand
    assert list(report.stale(str(tmp_path), {})) == [str(doc)]


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPVID_BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("CLIPVID_BENCH_LOCK", str(tmp_path / "bench.lock"))
    return tmp_path / "results"


def _train_scale_result() -> None:
    from bench.train_scale import RESULT_KEYS
    run = common.Run("train_scale", RESULT_KEYS)
    run.headline("evaluate_slope", [2.5, 2.0, 4.0])
    run.headline("ooc_overhead", [1.7])
    run.write({"evaluate_slope": 2.5, "ooc_overhead": 1.7, "ooc_videos": 10_000, "linear_vs_meanpool": 5.0,
               "evaluate_fixed_seconds": 30.0}, state="warm", repeats=3)


def test_tables_quote_headlines_with_spread_goal_and_source(results):
    _train_scale_result()
    loaded = report.load_all()
    assert set(loaded) == {"train_scale"}
    figures = report.tables(loaded)["figures"]
    commit = loaded["train_scale"]["stamp"]["commit"]
    slope = next(ln for ln in figures.splitlines() if "evaluate_slope" in ln)
    assert "2.5 (2-4, n=3)" in slope and "<= 3" in slope and "met" in slope and f"train_scale @ {commit}" in slope
    ooc = next(ln for ln in figures.splitlines() if "ooc_overhead" in ln)
    assert "MISSED" in ooc and "1.7 (n=1)" in ooc
    linear = next(ln for ln in figures.splitlines() if "linear_vs_meanpool" in ln)
    assert "not held" in linear and "MISSED" not in linear and "met" not in linear
    runs = report.tables(loaded)["runs"]
    assert commit in runs and str(os.cpu_count()) in runs


def test_a_figure_from_another_machine_names_it(results):
    _train_scale_result()
    doc = report.load_all()["train_scale"]
    other = json.loads(json.dumps(doc))
    other["stamp"]["machine"].update(cpu="Other CPU", cores=16, gpu="NVIDIA H200")
    other["headlines"] = {"rss_growth": {"median": 0.9, "min": 0.9, "max": 0.9, "n": 1}}
    figures = report.tables({"train_scale": doc, "predict": doc, "memory": other})["figures"].splitlines()
    assert "(Other CPU, 16 cores, NVIDIA H200)" in next(ln for ln in figures if "rss_growth" in ln)
    assert "Other CPU" not in next(ln for ln in figures if "evaluate_slope" in ln)


def test_unstamped_files_are_not_read(tmp_path):
    (tmp_path / "memory.json").write_text(json.dumps({"rss_growth": 0.79}))
    assert report.load_all(str(tmp_path)) == {}
    assert "No stamped results yet" in report.tables({})["figures"]


def test_check_exits_1_on_a_stale_doc_and_docs_rewrites_it(tmp_path):
    """The command line on a copy of the docs (never the checkout's own files)."""
    root = tmp_path / "repo"
    (root / "bench").mkdir(parents=True)
    (root / "bench" / "PERFORMANCE.md").write_text("<!-- bench:goals -->\nstale\n<!-- /bench:goals -->\n")
    env = dict(os.environ, PYTHONPATH=ROOT, CLIPVID_BENCH_RESULTS=str(tmp_path / "results"))
    check = lambda: run_cli("-m", "bench.report", "--check", "--root", root, env=env, check=False)  # noqa: E731
    assert check().returncode == 1
    assert run_cli("-m", "bench.report", "--docs", "--root", root, env=env).stdout.startswith("wrote")
    assert "No stamped results yet" in (root / "bench" / "PERFORMANCE.md").read_text()
    assert check().returncode == 0
