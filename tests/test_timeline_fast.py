"""The timeline's fast path (each row read once, windows pooled or batched) equals scoring every window as a video."""
import csv
import os

import numpy as np
import pytest

from conftest import head_run
from predict.__main__ import main as predict_main
from train.api import load_arrays, load_head, window_probabilities, window_starts
from train.cli import main as train_main
from train.method import window_sums
from train.registry import ALL_METHODS
from train.synthetic import write_synthetic_cache
from train.timeline import segments, video_duration

WINDOW, STRIDE = 7, 3   # on N = 30 the last window (rows 23-29) is off the stride grid


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A real 24-video cache (N = 30, D = 32) and one run of every head trained on it for 2 epochs."""
    root = tmp_path_factory.mktemp("timeline_fast")
    cache = str(root / "small.h5")
    write_synthetic_cache(cache, num_classes=4, per_class=6, frames=30, dim=32, seed=5, num_pairs=2, noise=0.8)
    runs = str(root / "runs")
    assert train_main([cache, "--out", runs, "--head", "all", "--epochs", "2", "--quiet"]) == 0
    return cache, runs, load_arrays(cache)


def plain(head, emb, window=WINDOW, stride=STRIDE):
    """Every window cut out and scored as a short video through Head.predict (the closed-set path)."""
    return window_probabilities(head.predict, emb, window, stride)        # [V, W, C]


@pytest.mark.parametrize("name", ALL_METHODS)
@pytest.mark.parametrize("window,stride", [(WINDOW, STRIDE), (6, 3)])    # rows pooled one by one, in chunks of 3
def test_fast_windows_equal_plain_windows(small, name, window, stride):
    _, runs, data = small
    head = load_head(head_run(runs, name), device="cpu")
    starts = window_starts(data.emb.shape[1], window, stride)
    fast = head.window_predict(data.emb, starts, window)                   # [V, W, C]
    slow = plain(head, data.emb, window, stride)
    assert fast.shape == slow.shape == (len(data.ids), len(starts), len(head.class_names))
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-5)
    assert (fast.argmax(axis=2) == slow.argmax(axis=2)).all()
    if name != "meanpool":
        meanpool = plain(load_head(head_run(runs, "meanpool"), device="cpu"), data.emb, window, stride)
        assert np.abs(slow - meanpool).max() > 1e-4, "the head must differ from meanpool for the test to mean much"


def test_window_sums_match_direct_sums():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 30, 5)).astype(np.float32)
    for window, stride in ((7, 3), (6, 3), (10, 10), (30, 4), (1, 1)):
        starts = window_starts(30, window, stride)
        direct = np.stack([x[:, s:s + window].sum(axis=1) for s in starts], axis=1)   # [3, W, 5]
        np.testing.assert_allclose(window_sums(x, starts, window), direct, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ALL_METHODS)
def test_predict_command_timeline_equals_plain_path(small, name, tmp_path):
    cache, runs, data = small
    run = head_run(runs, name)
    out = str(tmp_path / "pred")
    assert predict_main([cache, "--run", run, "--out", out, "--window", str(WINDOW), "--stride", str(STRIDE),
                         "--quiet"]) == 0
    head = load_head(run, device="cpu")
    n = data.emb.shape[1]
    starts = window_starts(n, WINDOW, STRIDE)
    expected = []
    for vid, probs, times, dur in zip(data.ids, plain(head, data.emb), data.times, data.duration):
        for s in segments(probs, starts, WINDOW, n, video_duration(float(dur), times)):
            expected.append((vid, f"{s.start_s:.3f}", f"{s.end_s:.3f}", head.class_names[s.label], s.score))
    with open(os.path.join(out, "timeline.csv"), newline="", encoding="utf-8") as f:
        got = [(r["id"], r["start_s"], r["end_s"], r["pred"], float(r["score"])) for r in csv.DictReader(f)]
    assert [g[:4] for g in got] == [e[:4] for e in expected]
    np.testing.assert_allclose([g[4] for g in got], [e[4] for e in expected], rtol=0, atol=2e-6)
    for vid in data.ids:                                                  # one subtitle file per video
        assert os.path.isfile(os.path.join(out, "subtitles", vid + ".vtt"))


def test_windows_that_do_not_fit_are_refused(small):
    _, runs, data = small
    head = load_head(head_run(runs, "meanpool"), device="cpu")
    with pytest.raises(ValueError, match="do not fit videos of 30 frames"):
        head.window_predict(data.emb, np.array([0, 25]), 7)
