"""Open set in the report comes from each head's own logits: the same numbers train printed, n/a for the probe."""
import json
import os

import numpy as np
import pytest
from conftest import head_run, run_cli

from evaluate.openset import open_set_scores
from train.synthetic import write_synthetic_cache


@pytest.mark.slow
def test_report_open_set_equals_what_training_printed(tmp_path):
    cache = str(tmp_path / "c.h5")
    write_synthetic_cache(cache, num_classes=6, per_class=10, frames=8, dim=16, seed=2)
    runs, out = tmp_path / "runs", tmp_path / "report"
    run_cli("-m", "train", cache, "--out", str(runs), "--head", "linear,xclip", "--holdout-classes", "2",
            "--epochs", "3", "--quiet")
    run_cli("-m", "evaluate", cache, "--runs", str(runs), "--out", str(out), "--resamples", "50", "--quiet")
    data = json.loads((out / "metrics.json").read_text())
    for head in ("xclip", "linear"):
        own = json.load(open(os.path.join(head_run(runs, head), "metrics.json")))
        name = os.path.dirname(os.path.relpath(head_run(runs, head), runs))
        o = data["open_set"][name]
        assert o["seen"] == pytest.approx(own["test_seen"]["top1"])
        assert o["videos_unseen"] == own["test_unseen"]["n"] > 0
        if head == "xclip":  # video-conditioned prompts included: the very number training printed
            assert o["unseen"] == pytest.approx(own["test_unseen"]["top1"]) and o["scores_unseen"]
        else:                # no logit for a class it never saw: not a zero-shot number at all
            assert o["unseen"] is None and o["harmonic"] is None and not o["scores_unseen"]
    md = (out / "report.md").read_text()
    assert "| n/a | n/a |" in md


def test_open_set_scores_use_the_given_logits():
    names = ["a", "b", "c"]
    logits = np.array([[5.0, 1.0, 0.0], [0.0, 1.0, 3.0], [0.0, 2.0, 1.0]])  # [T, C'] over candidates a, b, c
    truth = np.array([0, 2, 2])
    o = open_set_scores(logits, np.arange(3), truth, names, ["a", "b"], ["c"])
    assert o["seen"] == 1.0 and o["unseen"] == 0.5 and o["harmonic"] == pytest.approx(2 / 3)
    # rejection by the largest seen logit: known video 5.0, unknown 1.0 and 2.0
    assert o["auroc_unknown"] == 1.0
    probe = open_set_scores(logits, np.arange(3), truth, names, ["a", "b"], ["c"], scores_any_text=False)
    assert probe["unseen"] is None and probe["seen"] == 1.0
