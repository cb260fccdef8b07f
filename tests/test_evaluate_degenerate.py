"""Degenerate caches: train and evaluate finish with a documented status and a written report, never a signal."""
import ctypes
import json
import os

import numpy as np
import pytest
from conftest import run_cli

from evaluate.tsne import run_isolated, safe_tsne
from test_evaluate_support import clustered_videos, make_cache, unit

pytestmark = pytest.mark.slow

NAMES = ["a", "b", "c"]


def _text():
    return unit(np.random.default_rng(0).normal(size=(len(NAMES), 32)))


def duplicates():
    """18 copies of one clip under different names (one class), next to ordinary videos."""
    text = _text()
    videos = clustered_videos(text, NAMES, 8, 6)
    clip = np.random.default_rng(1).normal(size=(6, 32))
    videos += [{"id": f"copies/copy{i}.mp4", "emb": clip, "label": "a"} for i in range(18)]
    return text, videos


def single_test_class():
    text = _text()
    videos = clustered_videos(text, NAMES, 6, 6, splits=["train"])
    for v in videos:
        if v["label"] == "a" and v["id"].endswith(("v0.mp4", "v1.mp4")):
            v["split"] = "test"
    return text, videos


def one_per_class():
    text = _text()
    return text, clustered_videos(text, NAMES, 1, 6)


def class_unlabelled():
    text = _text()
    videos = clustered_videos(text, NAMES, 6, 6)
    for v in videos:
        if v["label"] == "c":
            v["label"] = None
    return text, videos


def two_videos():
    text = _text()
    return text, clustered_videos(text, NAMES[:2], 1, 6)


# case -> (videos, exit status of train, exit status of evaluate)
CASES = {"duplicates": (duplicates, 0, 0), "single_test_class": (single_test_class, 0, 0),
         "one_per_class": (one_per_class, 3, 0), "class_unlabelled": (class_unlabelled, 0, 0),
         "two_videos": (two_videos, 3, 0)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_degenerate_cache_still_gets_a_report(case, tmp_path):
    build, train_status, eval_status = CASES[case]
    text, videos = build()
    cache = make_cache(str(tmp_path / "c.h5"), NAMES, text, videos, frames=6)
    runs, out = tmp_path / "runs", tmp_path / "report"
    trained = run_cli("-m", "train", cache, "--out", str(runs), "--head", "meanpool,linear,lstm", "--epochs", "2",
                      "--quiet", check=False)
    assert trained.returncode == train_status, trained.stderr  # never negative (a signal)
    if train_status:
        err = trained.stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in trained.stderr
        runs.mkdir(exist_ok=True)
    done = run_cli("-m", "evaluate", cache, "--runs", str(runs), "--out", str(out), "--resamples", "50", "--quiet",
                   check=False)
    assert done.returncode == eval_status, done.stderr
    assert "Traceback" not in done.stderr
    data = json.loads((out / "metrics.json").read_text())
    md = (out / "report.md").read_text()
    assert (out / "report.html").stat().st_size > 0
    assert "## t-SNE of video embeddings" in md and "## Best head" in md
    if train_status:
        assert data["heads"] == [] and "No confusion matrix: no head could be scored" in md
    else:
        assert {h["head"] for h in data["heads"]} == {"meanpool", "linear", "lstm"}
        assert data["confusion"]["head"] == data["best_head"]
    if case == "duplicates":
        assert "tsne.png" in data["figures"]
        assert "17 videos duplicate another video's embedding exactly" in data["tsne_note"]
    if case == "two_videos":
        assert "tsne.png" not in data["figures"] and "Not drawn: " in md
        assert "only 2 distinct video embeddings" in data["tsne_note"]
    if case == "class_unlabelled":
        assert data["confusion"]["per_class"]["c"] is None  # no labelled video of c: no accuracy, not 0
    if case == "single_test_class":
        assert all(h["test_videos"] == 2 for h in data["heads"])


def test_a_native_crash_in_the_child_is_reported_not_raised():
    result, reason = run_isolated(ctypes.string_at, 0)        # a real SIGSEGV, in the child only
    assert result is None and reason == "the t-SNE process was killed by signal 11"
    result, reason = run_isolated(int, "x")
    assert result is None and reason.startswith("t-SNE failed: ValueError")
    assert run_isolated(abs, -3) == (3, None)


def test_safe_tsne_validates_and_merges_duplicates():
    rng = np.random.default_rng(0)
    emb = np.concatenate([np.ones((18, 8)), rng.normal(size=(12, 8)), [[np.nan] * 8]]).astype(np.float32)
    calls = []

    def in_process(fn, unique, seed):  # same contract as run_isolated, without the process
        calls.append(len(unique))
        return fn(unique, seed), None

    xy, note = safe_tsne(emb, runner=in_process)
    assert calls == [13]                                      # 1 + 12 distinct finite rows laid out
    assert np.isnan(xy[-1]).all() and np.isfinite(xy[:-1]).all()
    assert np.allclose(xy[:18], xy[0])                        # the copies share one spot
    assert "1 videos with non-finite" in note and "17 videos duplicate" in note
    xy, note = safe_tsne(emb, runner=lambda fn, u, s: (None, "the t-SNE process was killed by signal 11"))
    assert xy is None and note.endswith("killed by signal 11")
    assert safe_tsne(np.ones((40, 8)))[0] is None
