"""The same seed gives the same run: in two processes, and on a cache whose rows another extraction
wrote in a different order (Dask finishes videos in a different order every time)."""
import json
import os

import numpy as np
import torch

from cache.reader import open_cache
from conftest import head_run, run_cli
from train.splits import id_rank, make_splits
from train.synthetic import write_synthetic_cache

HEADS = ("linear", "lstm", "transformer", "xclip")


def _train(cache: str, out: str) -> None:
    run_cli("-m", "train", cache, "--out", out, "--head", ",".join(HEADS), "--epochs", "4", "--quiet")


def _run_of(out: str, head: str):
    run = head_run(out, head)
    with open(os.path.join(run, "metrics.json")) as f:
        m = json.load(f)
    with open(os.path.join(run, "split.json")) as f:
        split = json.load(f)
    state = torch.load(os.path.join(run, "head.pt"), weights_only=True)["state_dict"]
    picked = {k: m.get(k) for k in ("history", "val", "test", "best_epoch", "epochs_run", "linear")}
    return picked, split, state


def test_same_seed_gives_identical_runs_across_processes_and_row_orders(tmp_path):
    first, shuffled = str(tmp_path / "a.h5"), str(tmp_path / "b.h5")
    write_synthetic_cache(first, num_classes=6, per_class=12, frames=16, dim=32, seed=0)
    write_synthetic_cache(shuffled, num_classes=6, per_class=12, frames=16, dim=32, seed=0, row_order_seed=5)
    with open_cache(first) as a, open_cache(shuffled) as b:
        assert sorted(a.ids) == sorted(b.ids) and list(a.ids) != list(b.ids)  # same videos, other rows
    outs = [str(tmp_path / name) for name in ("run1", "run2", "run_shuffled")]
    for cache, out in zip((first, first, shuffled), outs):
        _train(cache, out)
    for head in HEADS:
        runs = [_run_of(out, head) for out in outs]
        (m0, split0, state0) = runs[0]
        assert m0["test"]["n"] > 0 and (head == "linear" or len(m0["history"]) >= 1)
        for m, split, state in runs[1:]:
            assert m == m0, head                       # every figure, epoch by epoch, bit for bit
            assert {k: sorted(v) for k, v in split.items()} == {k: sorted(v) for k, v in split0.items()}, head
            assert state.keys() == state0.keys() and all(torch.equal(state[k], state0[k]) for k in state0), head


def test_splits_follow_video_ids_not_cache_rows():
    rng = np.random.default_rng(0)
    ids = np.array([f"class{c}/v{i:03d}.mp4" for c in range(4) for i in range(10)], dtype=object)
    labels = np.repeat(np.arange(4), 10)
    perm = rng.permutation(len(ids))                   # the same videos, written in another order
    a, _ = make_splits([""] * len(ids), labels, 3, id_rank(ids))
    b, _ = make_splits([""] * len(ids), labels[perm], 3, id_rank(ids[perm]))
    for part in ("train", "val", "test"):
        assert sorted(ids[a[part]]) == sorted(ids[perm][b[part]]) and len(a[part])
        assert np.all(np.diff(b[part]) > 0)            # rows stay sorted for contiguous reads
    # Without ranks the draw follows the rows, so the two orders disagree (what the rank fixes).
    c, _ = make_splits([""] * len(ids), labels[perm], 3)
    assert sorted(ids[a["test"]]) != sorted(ids[perm][c["test"]])
