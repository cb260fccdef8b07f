"""Few-shot curves in the report: heads retrained on K labelled videos per class, scored on the test split."""
import json
import os

import numpy as np
import pytest

from clipvid.errors import EXIT_OK, EXIT_USAGE
from evaluate.__main__ import main as evaluate
from evaluate.fewshot import choose_shots, parse_shots
from helpers_browser import dump_dom
from train.cli import main as train
from train.splits import few_shot_rows, id_rank
from train.synthetic import write_synthetic_cache


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("fewshot")
    cache, runs = str(root / "syn.h5"), str(root / "runs")
    # 6 classes x 15 videos: about 9 training videos per class, so K = 8 fits and K = 50 cannot.
    write_synthetic_cache(cache, num_classes=6, per_class=15, frames=16, dim=32, seed=0)
    assert train([cache, "--out", runs, "--head", "meanpool,linear,lstm,xclip", "--epochs", "8", "--quiet"]) == 0
    return cache, runs, root


def _report(trained, name, *extra):
    cache, runs, root = trained
    out = str(root / name)
    status = evaluate([cache, "--runs", runs, "--out", out, "--quiet", "--resamples", "50", *extra])
    with open(os.path.join(out, "metrics.json")) as f:
        return status, out, json.load(f)


def test_curves_have_the_asked_shots_and_draws(trained):
    status, out, m = _report(trained, "rep", "--shots", "1,2,8,50", "--shot-draws", "2")
    assert status == EXIT_OK
    few = m["few_shot"]
    assert few["shots"] == [1, 2, 8] and few["draws"] == [0, 1]
    # K = 50 is more than the smallest class holds: skipped, and the report says why.
    assert any("K = 50 skipped" in n and "smallest class" in n for n in few["notes"])
    heads = {name.split("-")[0] for name in few["curves"]}
    assert heads == {"linear", "lstm", "xclip"}                  # what learns from labels; not meanpool
    values = []
    for c in few["curves"].values():
        assert c["shots"] == [1, 2, 8] and len(c["top1"]) == 3 and all(len(d) == 2 for d in c["top1"])
        values += [v for per_k in c["top1"] for v in per_k]
        assert np.allclose(c["mean"], np.mean(c["top1"], axis=1))
        assert np.allclose(c["sd"], np.std(c["top1"], axis=1, ddof=1))
    assert all(0.0 <= v <= 1.0 for v in values) and len(set(values)) > 1
    assert "fewshot.png" in m["figures"] and os.path.getsize(os.path.join(out, "fewshot.png")) > 1000
    dom = dump_dom("file://" + os.path.join(out, "report.html"))
    start = dom.index('id="few-shot"')
    section = dom[start:dom.index("</section>", start)]
    assert "K = 1" in section and "K = 8" in section and "K = 50 skipped" in section
    assert 'src="data:image/png;base64,' in section and "±" in section
    with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
        assert "Few-shot" in f.read()


def test_shots_none_and_bad_values(trained):
    status, out, m = _report(trained, "off", "--shots", "none")
    assert status == EXIT_OK and m["few_shot"]["curves"] == {} and "fewshot.png" not in m["figures"]
    assert "off (--shots none)" in m["few_shot"]["notes"]
    cache, runs, root = trained
    for bad in (["--shots", "two"], ["--shots", "0,4"], ["--shot-draws", "0"]):
        assert evaluate([cache, "--runs", runs, "--out", str(root / "bad"), "--quiet", *bad]) == EXIT_USAGE


def test_auto_shots_follow_the_smallest_class():
    assert parse_shots("auto") is None and parse_shots("none") == [] and parse_shots("8,2,2") == [2, 8]
    assert choose_shots(None, 9) == ([1, 2, 4, 8], ["K = 16 not run: the smallest class has 9 training videos"])
    assert choose_shots(None, 40)[0] == [1, 2, 4, 8, 16]
    shots, notes = choose_shots(None, 1)                         # one video per class: no curve
    assert shots == [] and "off" in notes[0]
    kept, notes = choose_shots([4, 32], 10)
    assert kept == [4] and len(notes) == 1 and "K = 32 skipped" in notes[0]


def test_few_shot_draws_are_nested_and_follow_ids():
    ids = np.array([f"c{c}/v{i}" for c in range(3) for i in range(10)], dtype=object)
    labels = np.repeat(np.arange(3), 10)
    rows = np.arange(30)
    two, four = (few_shot_rows(rows, labels, k, seed=1, rank=id_rank(ids)) for k in (2, 4))
    assert np.bincount(labels[four]).tolist() == [4, 4, 4] and set(two) <= set(four)
    assert not np.array_equal(four, few_shot_rows(rows, labels, 4, seed=2, rank=id_rank(ids)))
    perm = np.random.default_rng(0).permutation(30)              # the same videos in other cache rows
    again = few_shot_rows(rows, labels[perm], 4, seed=1, rank=id_rank(ids[perm]))
    assert sorted(ids[perm][again]) == sorted(ids[four])
