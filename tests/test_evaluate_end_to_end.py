"""End to end on the extracted demo cache: real `python -m train` runs, then the report and head search."""
import json
import os
import re

import numpy as np
import pytest
from conftest import head_run, run_cli

from test_evaluate_support import make_cache, tiny_clip_hash, unit

pytestmark = pytest.mark.slow

HEADS = ["meanpool", "vote", "linear", "lstm"]


@pytest.fixture(scope="module")
def trained(demo_cache, tmp_path_factory):
    runs = tmp_path_factory.mktemp("e2e") / "runs"
    run_cli("-m", "train", demo_cache, "--out", str(runs), "--head", ",".join(HEADS), "--epochs", "2",
            "--frames", "16", "--quiet")
    out = runs.parent / "report"
    done = run_cli("-m", "evaluate", demo_cache, "--runs", str(runs), "--out", str(out), "--resamples", "300",
                   "--quiet")
    return {"runs": runs, "out": out, "stdout": done.stdout, "cache": demo_cache}


def test_report_recomputes_the_runs_own_numbers(trained):
    data = json.loads((trained["out"] / "metrics.json").read_text())
    heads = {h["head"]: h for h in data["heads"]}
    assert set(heads) == set(HEADS) and not data["warnings"]
    for name in HEADS:
        own = json.loads(open(os.path.join(head_run(trained["runs"], name), "metrics.json")).read())
        h = heads[name]
        assert h["source"] == "recomputed"
        assert h["test_videos"] == own["test"]["n"] > 0
        # scored here through train.api on the same split and frames: the same accuracies training reported
        assert h["top1"]["value"] == pytest.approx(own["test"]["top1"], abs=1e-6)
        assert h["mean_class"]["value"] == pytest.approx(own["test"]["mean_class"], abs=1e-6)
        assert h["top1"]["low"] <= h["top1"]["value"] <= h["top1"]["high"]
        curve = data["frames_curve"][h["name"]]
        assert h["name"].startswith(f"{name}-f16") and h["seeds"] == [0] and h["frames"] == 16
        assert curve["frames"][0] == 1 and curve["frames"][-1] == data["provenance"]["frames"]
        assert curve["top1"][curve["frames"].index(16)] == pytest.approx(h["top1"]["value"])
    # chosen on validation, never on test
    best = max(HEADS, key=lambda n: heads[n]["val_top1"]["mean"])
    assert data["best_head"] == heads[best]["name"] and "validation" in data["best_chosen_by"]
    assert {"frames_curve.png", "confusion.png", "per_class.png", "tsne.png", "training_curves.png"} \
        <= set(data["figures"])
    assert set(data["retrieval"]["class_prompts"]) == {"CLIP mean-pool", *(h["name"] for h in heads.values())}


def test_report_html_from_real_runs(trained):
    html = (trained["out"] / "report.html").read_text()
    assert "RANDOM CLIP WEIGHTS" in html and "random:tiny" in html
    for name in HEADS:
        assert re.search(rf"<td>{name}-f16[^<]*</td>", html)
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) >= 5
    md = (trained["out"] / "report.md").read_text()
    assert "![" in md and "(tsne.png)" in md


def test_search_with_a_trained_head(trained):
    page = trained["out"] / "search.html"
    out = run_cli("-m", "evaluate.search", trained["cache"], "a ball moving to the right", "--run",
                  head_run(trained["runs"], "lstm"), "--top", "3", "--html", str(page), "--quiet")
    lines = out.stdout.splitlines()[1:]
    assert len(lines) == 3
    scores = [float(line.split()[1]) for line in lines]
    assert scores == sorted(scores, reverse=True)
    html = page.read_text()
    assert "lstm-f16-e2-lr0.003 head" in html  # named by head and settings, not by its seed folder
    assert len(re.findall(r'src="data:image/jpeg;base64,', html)) == 3  # the demo videos are on disk


def test_search_refuses_a_foreign_run(trained, tmp_path):
    weights_hash, dim = tiny_clip_hash()
    text = unit(np.random.default_rng(0).normal(size=(1, dim)))
    other = make_cache(str(tmp_path / "other.h5"), ["x"], text,
                       [{"id": "a.mp4", "emb": np.ones((4, dim)), "label": "x"}], weights_hash=weights_hash, frames=4)
    out = run_cli("-m", "evaluate.search", other, "anything", "--run", head_run(trained["runs"], "lstm"), check=False)
    assert out.returncode == 3 and out.stderr.startswith("error: ") and "Traceback" not in out.stderr
