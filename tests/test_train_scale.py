"""Kinetics-scale paths on small real caches: out-of-core training, block order, streaming synthetic caches."""
import json
import os

import numpy as np
import pytest

from cache.reader import open_cache
from train.cli import main
from train.data import FrameSource, contiguous_runs, epoch_order, frame_statistics, frame_subset
from train.synthetic import write_synthetic_cache
from conftest import head_run

FAST = ["--epochs", "3", "--quiet"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("scale") / "syn.h5")
    # 600 videos: several shuffle blocks and windows, so batches span windows and runs have gaps.
    write_synthetic_cache(path, num_classes=6, per_class=100, frames=16, dim=32, seed=3)
    return path


def test_epoch_order_visits_every_position_once_and_keeps_blocks_together():
    rows = np.sort(np.random.default_rng(0).choice(5000, 1000, replace=False))
    windows = epoch_order(rows, np.random.default_rng(1), block=50, window=3)
    order = np.concatenate(windows)
    assert sorted(order.tolist()) == list(range(len(rows)))
    assert len(windows) == 7  # 20 blocks, 3 per window
    # every window holds whole blocks of consecutive positions (blocks of 50 in cache order)
    for w in windows:
        assert set(np.unique(w // 50).tolist()) and all(np.sum(w // 50 == b) == 50 for b in np.unique(w // 50))
    again = np.concatenate(epoch_order(rows, np.random.default_rng(1), block=50, window=3))
    assert np.array_equal(order, again)


def test_contiguous_runs_cover_the_rows_and_read_through_small_gaps():
    rows = np.array([0, 1, 2, 10, 200, 201, 5000])
    runs = contiguous_runs(rows, gap=64)  # the gap is a parameter; the default is smaller
    assert runs == [(0, 11), (200, 202), (5000, 5001)]
    covered = np.concatenate([np.arange(a, b) for a, b in runs])
    assert np.isin(rows, covered).all()


def test_disk_source_returns_the_same_frames_and_batches_as_memory(cache):
    with open_cache(cache) as r:
        frames = frame_subset(r.frames, 5)
        mem, disk = FrameSource(r, frames), FrameSource(r, frames, budget=0)
        assert mem.in_memory and not disk.in_memory
        assert mem.disk_note is None and "training from disk" in disk.disk_note
        rows = np.random.default_rng(0).permutation(r.num_videos)[:333]
        assert np.array_equal(mem.get(rows), disk.get(rows))
        assert np.array_equal(disk.get(rows), r.emb(rows)[:, frames])
        windows = epoch_order(np.sort(rows), np.random.default_rng(4), block=16, window=3)
        a = list(mem.batches(np.sort(rows), windows, 37))
        b = list(disk.batches(np.sort(rows), windows, 37))
        assert len(a) == len(b) == int(np.ceil(333 / 37))
        for (pa, xa), (pb, xb) in zip(a, b):
            assert np.array_equal(pa, pb) and np.array_equal(xa, xb)
        for s_mem, s_disk in zip(frame_statistics(mem, rows), frame_statistics(disk, rows)):
            assert np.array_equal(s_mem, s_disk)


def test_in_memory_and_out_of_core_training_give_the_same_metrics(cache, tmp_path, monkeypatch):
    import train.data
    monkeypatch.setattr(train.data, "SHUFFLE_BLOCK", 16)   # several windows, batches that span two
    monkeypatch.setattr(train.data, "SHUFFLE_WINDOW", 4)
    results = {}
    for name, extra in (("mem", []), ("disk", ["--max-memory-mb", "0"])):
        out = str(tmp_path / name)
        assert main([cache, "--out", out, "--head", "lstm,meanpool,linear", "--batch-size", "24", *FAST, *extra]) == 0
        results[name] = {h: json.load(open(os.path.join(head_run(out, h), "metrics.json"))) for h in ("lstm", "meanpool", "linear")}
        results[name]["emb"] = np.load(os.path.join(head_run(out, "lstm"), "video_emb.npy"))
    for head in ("lstm", "meanpool", "linear"):
        a, b = results["mem"][head], results["disk"][head]
        assert a["test"] == b["test"] and a["val"] == b["val"]
        assert a["history"] == b["history"]
    assert np.array_equal(results["mem"]["emb"], results["disk"]["emb"])


def test_training_from_disk_says_so_once(cache, tmp_path, capfd):
    assert main([cache, "--out", str(tmp_path), "--head", "meanpool,maxpool", "--max-memory-mb", "0", *FAST]) == 0
    err = capfd.readouterr().err
    assert err.count("training from disk") == 1


def _sklearn_top1(train_x, train_y, test_x, test_y, c):
    import warnings
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(C=c, max_iter=2000).fit((train_x - mu) / sd, train_y)
    return float((model.predict((test_x - mu) / sd) == test_y).mean())


def _torch_against_sklearn(x, labels, num_classes, splits):
    from train.linear import fit_linear
    from train.metrics import topk_accuracy
    tr, va, te = splits
    weight, bias, info = fit_linear(x[tr], labels[tr], x[va], labels[va], num_classes, 0)
    ours = topk_accuracy(x[te] @ weight.T + bias, labels[te], 1)
    return ours, _sklearn_top1(x[tr], labels[tr], x[te], labels[te], info["C"])


@pytest.mark.slow
def test_torch_linear_probe_matches_scikit_learn_on_10k_videos_of_400_classes():
    from train.synthetic import synthetic_videos
    _, _, emb, labels = synthetic_videos(400, 25, 4, 16, seed=0, noise=1.0)
    x = emb.astype(np.float32).mean(1)                                    # [10000, 16]
    order = np.random.default_rng(0).permutation(len(x))
    ours, theirs = _torch_against_sklearn(x, labels, 400, np.split(order, [8000, 9000]))
    assert 0.1 < theirs < 0.95 and abs(ours - theirs) <= 0.01, (ours, theirs)


@pytest.mark.slow
def test_torch_linear_probe_matches_scikit_learn_on_the_demo(demo_cache):
    from train.baselines import mean_over_time
    from train.prepare import prepare
    from train.run import map_rows
    data = prepare(demo_cache, None, 0)
    try:
        x = map_rows(data, np.arange(data.reader.num_videos), mean_over_time, data.reader.dim)
        splits = [data.splits[s] for s in ("train", "val", "test")]
        ours, theirs = _torch_against_sklearn(x, data.labels.astype(np.int64), len(data.class_names), splits)
    finally:
        data.reader.close()
    # 60 test videos: one video is 1.7 points, so "within a point" allows one near-tied video to differ.
    assert abs(ours - theirs) <= max(0.01, 1.0 / len(splits[2])) + 1e-9, (ours, theirs)


def test_streamed_synthetic_cache_reads_back_and_trains(tmp_path):
    from train.synthetic import stream_synthetic_cache
    path = str(tmp_path / "stream.h5")
    stream_synthetic_cache(path, 700, num_classes=20, frames=6, dim=16, seed=1, block=128, progress=False)
    with open_cache(path) as r:
        assert (r.num_videos, r.frames, r.dim, len(r.class_names)) == (700, 6, 16, 20)
        assert set(r.splits) == {"train", "val", "test"} and np.bincount(r.labels).min() == 35
        assert np.isfinite(r.emb([0, 699]).astype(np.float32)).all() and r.times().shape == (700, 6)
    out = str(tmp_path / "runs")
    assert main([path, "--out", out, "--head", "meanpool", "--quiet"]) == 0
    m = json.load(open(os.path.join(head_run(out, "meanpool"), "metrics.json")))
    assert m["split_source"] == "column" and m["test"]["top1"] > 0.3  # 'still' classes sit near their text


def test_scan_shortcuts_give_the_same_numbers_as_the_plain_methods():
    from train.baselines import BaselineMethod
    from train.linear import LinearMethod
    from train.method import as_float32
    rng = np.random.default_rng(0)
    x16 = rng.standard_normal((9, 7, 16)).astype(np.float16)
    buf = np.full((12, 7, 16), np.nan, np.float32)
    x = as_float32(x16, buf)
    assert np.shares_memory(x, buf) and np.array_equal(x, x16.astype(np.float32))
    text = rng.standard_normal((5, 16)).astype(np.float32)
    picks = {"val": (np.array([0, 4]), text), "test": (np.array([1, 2, 8]), text[:3])}
    for name in ("midframe", "meanpool", "maxpool", "vote"):
        method = BaselineMethod(name, list("abcde"), {})
        for _ in range(2):  # nothing a method keeps between blocks may leak into the next
            emb, logits = method.embed_and_score(x, picks)
            assert np.array_equal(emb, method.video_embeddings(x16))
            for part, (rows, t) in picks.items():
                assert np.allclose(logits[part], method.logits(x16[rows], t), atol=1e-5)
                assert np.array_equal(logits[part].argmax(1), method.logits(x16[rows], t).argmax(1))
    probe = LinearMethod("linear", list("abcde"), {}, rng.standard_normal((5, 16)), rng.standard_normal(5))
    emb, logits = probe.score_pooled(x.mean(1), picks)
    assert np.array_equal(emb, probe.video_embeddings(x16))
    assert np.allclose(logits["test"], probe.logits(x16[[1, 2, 8]], text), atol=1e-5)


def test_a_linear_run_scores_meanpool_from_its_pooled_pass_with_the_same_results(cache, tmp_path):
    runs = {}
    for name, heads in (("alone", "meanpool"), ("with_linear", "linear,meanpool")):
        out = str(tmp_path / name)
        assert main([cache, "--out", out, "--head", heads, "--quiet"]) == 0
        runs[name] = head_run(out, "meanpool")
    a, b = (json.load(open(os.path.join(runs[k], "metrics.json"))) for k in ("alone", "with_linear"))
    assert a["test"] == b["test"] and a["val"] == b["val"]
    assert np.array_equal(np.load(os.path.join(runs["alone"], "video_emb.npy")),
                          np.load(os.path.join(runs["with_linear"], "video_emb.npy")))
    assert not any(f.endswith(".partial.npy") or ".tmp-" in f for f in os.listdir(runs["with_linear"]))


def test_evaluate_mean_pools_only_the_rows_a_report_needs(cache):
    from evaluate.video_emb import mean_pooled
    with open_cache(cache) as r:
        full = mean_pooled(r)
        rows = np.array([3, 4, 5, 90, 91, 400, 599])
        part = mean_pooled(r, rows=rows[::-1])
        assert np.array_equal(part[rows], full[rows])
        rest = np.setdiff1d(np.arange(r.num_videos), rows)
        assert not np.asarray(part[rest]).any() and np.asarray(full[rest]).any()


def test_frame_statistics_match_a_float64_reference_block_by_block():
    """The accumulator's float32 buffer and its per-video identity give the float64 answer, whatever the blocks."""
    from train.data import StatsAccumulator
    rng = np.random.default_rng(5)
    x = (0.02 * rng.standard_normal((300, 7, 16)) + 0.05 * rng.standard_normal((300, 1, 16)) + 0.01).astype(np.float16)
    acc = StatsAccumulator(16)
    for a, b in ((0, 40), (40, 250), (250, 251), (251, 300)):       # growing, shrinking and one-video blocks
        acc.add(x[a:b])
    mean, std, dev_std = acc.result()
    ref = x.astype(np.float64)
    assert np.allclose(mean, ref.mean(axis=(0, 1)), rtol=1e-6, atol=0)
    assert np.allclose(std, ref.std(axis=(0, 1)), rtol=1e-5, atol=0)
    assert np.allclose(dev_std, (ref - ref.mean(axis=1, keepdims=True)).std(axis=(0, 1)), rtol=1e-5, atol=0)
