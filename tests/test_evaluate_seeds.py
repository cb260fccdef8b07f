"""Several seeds per head: one report row with mean ± sd over seeds, best chosen on validation, the gap tested."""
import json
import os

import numpy as np
import pytest
from conftest import head_run, run_cli

from evaluate.seeds import paired_gap
from train.synthetic import write_synthetic_cache

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds")
    cache = str(root / "c.h5")
    write_synthetic_cache(cache, num_classes=6, per_class=12, frames=8, dim=16, seed=3)
    runs, out = root / "runs", root / "report"
    run_cli("-m", "train", cache, "--out", str(runs), "--head", "meanpool,lstm", "--seeds", "0,1,2", "--epochs", "3",
            "--quiet")
    run_cli("-m", "evaluate", cache, "--runs", str(runs), "--out", str(out), "--resamples", "200", "--quiet")
    return {"runs": runs, "data": json.loads((out / "metrics.json").read_text()),
            "md": (out / "report.md").read_text()}


def test_seed_runs_become_one_row_with_their_spread(seeded):
    heads = {h["head"]: h for h in seeded["data"]["heads"]}
    assert set(heads) == {"meanpool", "lstm"}
    lstm = heads["lstm"]
    assert lstm["name"] == "lstm-f8-e3-lr0.003" and lstm["seeds"] == [0, 1, 2] and lstm["epochs"] == 3
    assert lstm["runs"] == [f"lstm-f8-e3-lr0.003/seed{k}" for k in range(3)]
    own = [json.load(open(os.path.join(head_run(seeded["runs"], "lstm", k), "metrics.json")))["test"]["top1"]
           for k in range(3)]
    assert lstm["top1_seeds"]["n"] == 3
    assert lstm["top1_seeds"]["mean"] == pytest.approx(np.mean(own))
    assert lstm["top1_seeds"]["sd"] == pytest.approx(np.std(own, ddof=1))
    # the interval is of the seed-averaged per-video hits, so its point is the mean over seeds too
    assert lstm["top1"]["value"] == pytest.approx(np.mean(own))
    assert lstm["top1"]["low"] <= lstm["top1"]["value"] <= lstm["top1"]["high"]
    assert heads["meanpool"]["seeds"] == [0] and heads["meanpool"]["top1_seeds"]["n"] == 1
    assert "(3 seeds)" in seeded["md"] and " ± " in seeded["md"]


def test_best_is_chosen_on_validation_and_the_gap_is_tested(seeded):
    data = seeded["data"]
    heads = {h["name"]: h for h in data["heads"]}
    best = max(heads.values(), key=lambda h: h["val_top1"]["mean"])
    assert data["best_head"] == best["name"] and data["best_chosen_by"].startswith("validation")
    gap = data["best_gap"]
    other = next(n for n in heads if n != best["name"])
    assert gap["best"] == best["name"] and gap["next"] == other
    assert gap["diff"] == pytest.approx(heads[best["name"]]["top1"]["value"] - heads[other]["top1"]["value"])
    assert gap["low"] <= gap["diff"] <= gap["high"] and 0 <= gap["p_not_better"] <= 1
    assert "paired bootstrap interval" in seeded["md"]


def test_paired_gap_on_known_hits():
    class R:  # the two fields paired_gap reads from a scored run
        def __init__(self, hits):
            self.truth = np.zeros(len(hits), np.int64)
            self.pred = np.where(hits, 0, 1)
            self.run = type("Run", (), {"split": {"test": [f"v{i}" for i in range(len(hits))]}})()

    a = [R(np.ones(50, bool))]
    b = [R(np.arange(50) % 2 == 0)]
    gap = paired_gap(a, b, resamples=500)
    assert gap["diff"] == pytest.approx(0.5) and gap["low"] > 0.3 and gap["p_not_better"] == 0.0
    same = paired_gap(a, a, resamples=100)
    assert same["diff"] == 0.0 and same["low"] == same["high"] == 0.0 and same["p_not_better"] == 1.0


def test_provenance_names_versions_commit_and_commands(seeded):
    import torch
    p = seeded["data"]["provenance"]
    assert p["packages"]["torch"] == torch.__version__.split("+")[0]
    assert all(p["packages"][k] for k in ("clip", "h5py", "dask", "scikit-learn"))
    assert p["git_commit"] and len(p["git_commit"].split("+")[0]) == 40   # the tests run in a checkout
    runs = {c["run"]: c["command"] for c in p["commands"]}
    assert set(runs) == {"meanpool-f8/seed0", *(f"lstm-f8-e3-lr0.003/seed{k}" for k in range(3))}
    assert all(c.startswith("python -m train ") and "--seeds 0,1,2" in c for c in runs.values())
    assert "scikit-learn version" in seeded["md"] and "Command lines of the runs" in seeded["md"]
