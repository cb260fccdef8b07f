"""The report's intervals follow the videos, not the order extraction wrote them in (Dask finishes videos
in a different order every run): bootstraps resample the test videos in video-id order."""
import json
import os

import pytest

from cache.reader import open_cache
from evaluate.__main__ import main as evaluate_main
from train.cli import main as train_main
from train.synthetic import write_synthetic_cache


def _report(tmp_path, name: str, row_order_seed):
    cache, runs, out = (str(tmp_path / f"{name}{part}") for part in (".h5", "_runs", "_report"))
    write_synthetic_cache(cache, num_classes=5, per_class=14, frames=8, dim=16, seed=4, noise=1.2,
                          row_order_seed=row_order_seed)
    assert train_main([cache, "--out", runs, "--head", "meanpool,linear,lstm", "--seeds", "0,1", "--epochs", "2",
                       "--quiet"]) == 0
    # A run whose head will not load is reported from its predictions.csv (written in cache-row order).
    os.remove(os.path.join(runs, "linear-f8", "seed1", "head.pt"))
    evaluate_main([cache, "--runs", runs, "--out", out, "--resamples", "300", "--shots", "none", "--quiet"])
    with open(os.path.join(out, "metrics.json")) as f:
        return cache, json.load(f)


def _intervals(data):
    """Every bootstrap interval of the report: per head row (and its seeds pooled), and the best head's gap."""
    rows = {h["name"]: {k: h[k] for k in ("top1", "top5", "mean_class")} for h in data["heads"]}
    return rows, {k: data["best_gap"].get(k) for k in ("best", "next", "diff", "low", "high", "p_not_better")}


def test_two_caches_of_the_same_videos_in_other_row_orders_give_identical_intervals(tmp_path):
    a_cache, a = _report(tmp_path, "a", None)
    b_cache, b = _report(tmp_path, "b", 7)
    with open_cache(a_cache) as ra, open_cache(b_cache) as rb:
        assert sorted(ra.ids) == sorted(rb.ids) and list(ra.ids) != list(rb.ids)  # same videos, other rows
    rows_a, gap_a = _intervals(a)
    rows_b, gap_b = _intervals(b)
    assert set(rows_a) == {"meanpool-f8", "linear-f8", "lstm-f8-e2-lr0.003"}
    # The intervals are real ones (not a point): otherwise equality would prove nothing.
    assert any(r["top1"]["low"] < r["top1"]["high"] for r in rows_a.values())
    assert gap_a["low"] is not None and gap_a["low"] < gap_a["high"]
    assert rows_a == rows_b and gap_a == gap_b
    # Seeds were pooled per video (the interval's point is the seed mean), also for the head whose second
    # seed came from predictions.csv: its videos were matched to the recomputed seed's, in one order.
    for h in a["heads"]:
        if h["name"] != "meanpool-f8":
            assert h["top1_seeds"]["n"] == 2 and h["top1"]["value"] == pytest.approx(h["top1_seeds"]["mean"])
