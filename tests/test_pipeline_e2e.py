"""run_pipeline.sh end to end on a tiny demo set: report and figures exist; a second run reuses work."""
import json
import os
import subprocess

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _pipeline(out, *args, env_extra=None):
    env = dict(os.environ, CLIPVID_PER_CLASS="3", **(env_extra or {}))
    return subprocess.run([os.path.join(ROOT, "run_pipeline.sh"), "--out", str(out), "--frames", "16",
                           "--epochs", "3", *args], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=900)


def test_pipeline_end_to_end_then_resume(tmp_path):
    out = tmp_path / "out"
    first = _pipeline(out)
    assert first.returncode == 0, first.stdout + first.stderr
    # No weights can be downloaded here: the default model falls back to random:tiny, loudly.
    assert "RANDOM weights" in first.stderr
    # A log, not a terminal: plain progress lines (one per training epoch), no redraws, and none of
    # the library warnings a user can do nothing about (run_pipeline.sh no longer mutes them all).
    assert "\r" not in first.stderr
    assert "lstm epoch 3/3: loss" in first.stderr
    assert "Warning" not in first.stderr and "warnings.warn" not in first.stderr, first.stderr
    report_line = [ln for ln in first.stdout.splitlines() if ln.startswith("report: ")]
    assert report_line, first.stdout
    report = report_line[-1].split("report: ", 1)[1]
    folder = os.path.dirname(report)
    assert os.path.getsize(report) > 10_000
    html = open(report, encoding="utf-8").read()
    assert "random" in html.lower()
    pngs = [f for f in os.listdir(folder) if f.endswith(".png")]
    assert len(pngs) >= 4, pngs
    assert os.path.exists(os.path.join(folder, "report.md"))
    metrics = json.load(open(os.path.join(folder, "metrics.json")))
    assert metrics
    # The best head then labels the test videos again: its timeline page is printed beside the report.
    page_line = [ln for ln in first.stdout.splitlines() if ln.startswith("predictions: ")]
    assert page_line, first.stdout
    page = page_line[-1].split("predictions: ", 1)[1]
    assert page.endswith("timeline.html") and os.path.getsize(page) > 1000
    summary = json.load(open(os.path.join(os.path.dirname(page), "summary.json")))
    best_folder = os.path.basename(os.path.dirname(os.path.normpath(summary["run"])))   # RUNS/<best>/seed<k>
    assert best_folder == metrics["best_head"] and summary["counts"]["videos"] > 0, (summary["run"], metrics["best_head"])
    # Second run: the cache resumes with nothing to do and every head is reused.
    second = _pipeline(out)
    assert second.returncode == 0, second.stderr
    assert "cached 0," in second.stdout
    assert "already trained on this cache" in second.stderr
    assert "[3/4]" in second.stderr


def test_named_model_that_cannot_load_is_an_error(tmp_path):
    res = _pipeline(tmp_path / "out", "--clip-model", "ViT-B/32")
    assert res.returncode == 2
    assert "ViT-B/32" in res.stderr and "Traceback" not in res.stderr
