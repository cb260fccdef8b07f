"""The central claim on the built-in demo set (random:tiny CLIP): time matters, and the heads capture it."""
import csv
import json
import os

import pytest
from conftest import head_run

from train.cli import main

pytestmark = pytest.mark.slow

TEMPORAL = ("lstm", "transformer", "xclip")
ORDER_BLIND = ("meanpool", "maxpool", "vote", "linear")


SEEDS = (0, 1, 2, 3, 4)


@pytest.fixture(scope="module")
def demo_runs(demo_cache, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("demo_runs"))
    assert main([demo_cache, "--out", out, "--head", ",".join(ORDER_BLIND), "--quiet"]) == 0
    assert main([demo_cache, "--out", out, "--head", ",".join(TEMPORAL), "--quiet",
                 "--seeds", ",".join(map(str, SEEDS))]) == 0
    return out


def pair_accuracy(run_dir: str, pairs) -> float:
    """Test top-1 over the videos whose class has a time-reversed twin."""
    in_pair = {name for pair in pairs for name in pair}
    with open(os.path.join(run_dir, "predictions.csv"), newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["true"] in in_pair]
    assert len(rows) >= 20, "the demo test split should hold enough paired videos to measure"
    return sum(r["true"] == r["predicted"] for r in rows) / len(rows)


def test_temporal_heads_tell_time_reversed_pairs_apart(demo_runs, demo_pairs):
    scores = {h: pair_accuracy(head_run(demo_runs, h), demo_pairs) for h in TEMPORAL + ORDER_BLIND}
    # Each temporal head clears 0.90 on ~40 paired test videos (one error is 0.025) and beats every
    # order-blind method by a wide margin, while those stay near chance between the two twins.
    best_blind = max(scores[h] for h in ORDER_BLIND)
    for head in TEMPORAL:
        assert scores[head] >= 0.90 and scores[head] >= best_blind + 0.25, scores
    for head in ORDER_BLIND:
        assert scores[head] <= 0.65, scores


def test_temporal_heads_clear_090_on_average_over_seeds(demo_runs, demo_pairs):
    # The same split (--split-seed 0) for every seed; only the initial weights and batch order change.
    # Each head averages 0.90 over the seeds and no seed falls below 0.85 (two errors more than 0.90 on
    # ~40 pairs): with sampler 2's frames one transformer seed scored 0.875.
    scores = {(h, s): pair_accuracy(head_run(demo_runs, h, s), demo_pairs) for h in TEMPORAL for s in SEEDS}
    assert min(scores.values()) >= 0.85, scores
    for head in TEMPORAL:
        assert sum(scores[head, s] for s in SEEDS) / len(SEEDS) >= 0.90, scores


def test_demo_training_converges(demo_runs):
    for head in TEMPORAL:
        m = json.load(open(os.path.join(head_run(demo_runs, head), "metrics.json")))
        assert m["epochs_run"] >= m["best_epoch"] >= 1
        # The loss falls: the last-epoch training loss is well below the first.
        assert m["history"][-1]["train_loss"] < 0.5 * m["history"][0]["train_loss"]
