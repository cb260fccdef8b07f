"""predict end to end on the demo (real ffmpeg, real cache, real Dask, random:tiny CLIP through the real loader)."""
import csv
import json
import os
import shutil
import sys

import numpy as np
import pytest

from conftest import head_run, run_cli
from helpers_video import ffmpeg
from train.cli import main as train_main

pytestmark = pytest.mark.slow

HEADS = "meanpool,linear,transformer"
XSS = "<img src=x onerror=alert(1)>"


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def runs(demo_cache, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("predict_runs"))
    assert train_main([demo_cache, "--out", out, "--head", HEADS, "--epochs", "20", "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def new_clips(tmp_path_factory):
    """Twelve demo clips (one per class) rendered with another seed: never in the training cache."""
    out = str(tmp_path_factory.mktemp("new") / "clips")
    run_cli("-m", "extract.synthetic", out, "--per-class", "1", "--seed", "7")
    return out


@pytest.fixture(scope="module")
def predicted(runs, new_clips, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("pred"))
    res = run_cli("-m", "predict", new_clips, "--run", head_run(runs, "transformer"), "--out", out,
                  "--window", "20", "--stride", "10", "--html", "--workers", "1", "--quiet")
    return out, res


def test_predict_folder_of_new_clips(predicted, runs):
    out, res = predicted
    rows = read_csv(os.path.join(out, "predictions.csv"))
    assert list(rows[0])[:6] == ["id", "label", "pred_1", "score_1", "pred_2", "score_2"]
    assert len(rows) == 12 and {r["label"] for r in rows} == {r["label"] for r in rows if r["label"]}
    for r in rows:
        scores = [float(r[f"score_{k}"]) for k in range(1, 6)]
        assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0 + 1e-5
    summary = read_json(os.path.join(out, "summary.json"))
    assert summary["head"] == "transformer" and summary["mode"] == "head"
    assert summary["counts"]["videos"] == 12 and summary["counts"]["labelled_known_class"] == 12
    assert summary["text_embeddings"] == "checkpoint"
    assert summary["random_weights"] is True and summary["clip_model"] == "random:tiny" and summary["frames"] == 100
    top1 = sum(r["pred_1"] == r["label"] for r in rows) / 12
    assert summary["accuracy"]["top1"] == pytest.approx(top1)
    assert read_csv(os.path.join(out, "failures.csv")) == []
    assert os.path.join(out, "timeline.html") in res.stdout


def test_predict_agrees_with_the_api_and_with_evaluate(predicted, runs, tmp_path):
    out, _ = predicted
    from train.api import load_arrays, load_head
    head = load_head(head_run(runs, "transformer"), device="cpu")
    data = load_arrays(os.path.join(out, "cache.h5"))
    probs = head.predict(data.emb)                                           # [V, C]
    assert probs.shape == (12, len(head.class_names))
    rows = {r["id"]: r for r in read_csv(os.path.join(out, "predictions.csv"))}
    for vid, p in zip(data.ids, probs):
        assert rows[vid]["pred_1"] == head.class_names[int(p.argmax())]
        assert float(rows[vid]["score_1"]) == pytest.approx(float(p.max()), abs=1e-5)
    # evaluate on the new cache: cross-dataset, the same videos, the same top-1.
    report = str(tmp_path / "report")
    res = run_cli("-m", "evaluate", os.path.join(out, "cache.h5"), "--runs", runs, "--out", report,
                  "--quiet", "--resamples", "20")
    metrics = read_json(os.path.join(report, "metrics.json"))
    by_name = {h["head"]: h for h in metrics["heads"]}
    assert set(by_name) == set(HEADS.split(","))
    assert all(h["cross_dataset"] and h["test_videos"] == 12 for h in by_name.values())
    summary = read_json(os.path.join(out, "summary.json"))
    assert by_name["transformer"]["top1"]["value"] == pytest.approx(summary["accuracy"]["top1"])
    assert "Cross-dataset evaluation" in open(os.path.join(report, "report.html"), encoding="utf-8").read()
    # One head's folder, and run folders nested deeper, work the same way.
    nested = tmp_path / "nested" / "grid" / "seed0"
    shutil.copytree(head_run(runs, "transformer"), nested / "transformer")
    for runs_arg in (head_run(runs, "transformer"), str(tmp_path / "nested")):
        run_cli("-m", "evaluate", os.path.join(out, "cache.h5"), "--runs", runs_arg, "--out", str(tmp_path / "r1"),
                "--quiet", "--resamples", "20")
        one = read_json(str(tmp_path / "r1" / "metrics.json"))["heads"]
        assert len(one) == 1 and one[0]["top1"]["value"] == pytest.approx(summary["accuracy"]["top1"])


def test_timeline_outputs_and_page(predicted):
    out, _ = predicted
    segs = read_csv(os.path.join(out, "timeline.csv"))
    assert list(segs[0]) == ["id", "start_s", "end_s", "pred", "score"]
    by_video = {}
    for s in segs:
        by_video.setdefault(s["id"], []).append(s)
    assert len(by_video) == 12
    for vid, parts in by_video.items():
        assert float(parts[0]["start_s"]) == 0.0
        for a, b in zip(parts, parts[1:]):
            assert a["end_s"] == b["start_s"] and a["pred"] != b["pred"]     # tiled, and merged
        vtt = open(os.path.join(out, "subtitles", vid + ".vtt"), encoding="utf-8").read()
        assert vtt.startswith("WEBVTT") and vtt.count(" --> ") == len(parts)
    from helpers_browser import dump_dom
    dom = dump_dom("file://" + os.path.join(out, "timeline.html"))
    assert dom.count('class="video"') == 12 and dom.count("<track") == 12
    assert dom.count('class="seg"') == len(segs)


def test_unlabelled_folder(runs, new_clips, tmp_path):
    flat = tmp_path / "unlabelled"
    flat.mkdir()
    picked = sorted(os.listdir(new_clips))[:3]
    for i, cls in enumerate(picked):
        clip = os.listdir(os.path.join(new_clips, cls))[0]
        shutil.copy(os.path.join(new_clips, cls, clip), flat / f"video {i}.mp4")
    (flat / "broken.mp4").write_bytes(b"not a video at all" * 10)
    out = str(tmp_path / "pred")
    res = run_cli("-m", "predict", str(flat), "--run", head_run(runs, "linear"), "--out", out, "--workers", "1",
                  "--quiet", check=False)
    assert res.returncode == 1 and "failed: broken.mp4: " in res.stderr, res.stderr
    rows = read_csv(os.path.join(out, "predictions.csv"))
    assert len(rows) == 3 and all(r["label"] == "" and r["pred_1"] for r in rows)
    summary = read_json(os.path.join(out, "summary.json"))
    assert summary["counts"]["unlabelled"] == 3 and summary["accuracy"]["top1"] is None
    failed = read_csv(os.path.join(out, "failures.csv"))
    assert [f["id"] for f in failed] == ["broken.mp4"] and summary["counts"]["failed"] == 1
    from cache.reader import open_cache
    with open_cache(os.path.join(out, "cache.h5")) as r:          # exactly as extract recorded it
        assert dict(r.failures)["broken.mp4"] == failed[0]["reason"]
    assert summary["text_embeddings"] == "the linear probe's own weights"
    # evaluate on a cache with nothing it can score: exit 1, one line saying why.
    res = run_cli("-m", "evaluate", os.path.join(out, "cache.h5"), "--runs", runs, "--out", str(tmp_path / "r"),
                  "--quiet", check=False)
    assert res.returncode == 1 and res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1 and "nothing scored" in res.stderr


def test_timeline_changes_once_at_the_join(runs, tmp_path):
    from extract.synthetic import classes, encode
    table = classes()
    t = np.linspace(0.0, 1.0, 45)                                              # 3 s at 15 fps per class
    halves = [table[name](np.random.default_rng(seed), t, 120, 160)
              for seed, name in ((2, "a checkerboard flickering"), (3, "horizontal stripes drifting"))]
    folder = tmp_path / "joined"
    folder.mkdir()
    encode(np.clip(np.concatenate(halves), 0, 255).astype(np.uint8), 15.0, str(folder / "joined.mp4"))
    out = str(tmp_path / "pred")
    # Windows of 25 rows every 25: none straddles the join at row 50, so each sees one class only.
    run_cli("-m", "predict", str(folder), "--run", head_run(runs, "linear"), "--out", out,
            "--window", "25", "--stride", "25", "--workers", "1", "--quiet")
    segs = read_csv(os.path.join(out, "timeline.csv"))
    assert len(segs) == 2 and segs[0]["pred"] != segs[1]["pred"], segs
    window_s = 25 * 6.0 / 100
    assert abs(float(segs[0]["end_s"]) - 3.0) <= window_s
    assert float(segs[1]["end_s"]) == pytest.approx(6.0, abs=0.1)


def test_zero_shot_labels_match_meanpool(runs, predicted, tmp_path, demo_cache):
    out, _ = predicted
    from cache.reader import open_cache
    with open_cache(demo_cache) as r:
        names = list(r.class_names)
    labels = tmp_path / "names.txt"
    labels.write_text("# the demo's classes\n" + "\n".join(names) + "\n", encoding="utf-8")
    zs = str(tmp_path / "zs")
    res = run_cli("-m", "predict", os.path.join(out, "cache.h5"), "--labels-file", str(labels), "--out", zs,
                  "--quiet")
    summary = read_json(os.path.join(zs, "summary.json"))
    assert summary["mode"] == "zero-shot" and summary["head"] is None and summary["accuracy"]["n"] == 12
    assert "zero-shot" in res.stdout
    head = str(tmp_path / "mp")
    run_cli("-m", "predict", os.path.join(out, "cache.h5"), "--run", head_run(runs, "meanpool"), "--out", head,
            "--quiet")
    # CLIP's own zero-shot is mean-pool + cosine against the prompt-ensembled names: the meanpool baseline.
    assert [r["pred_1"] for r in read_csv(os.path.join(zs, "predictions.csv"))] == \
        [r["pred_1"] for r in read_csv(os.path.join(head, "predictions.csv"))]


def test_holdout_head_classifies_held_out_names(demo_cache, tmp_path):
    runs = str(tmp_path / "open")
    assert train_main([demo_cache, "--out", runs, "--head", "transformer", "--holdout-classes", "3",
                       "--epochs", "8", "--quiet"]) == 0
    metrics = read_json(os.path.join(head_run(runs, "transformer"), "metrics.json"))
    unseen = metrics["open_set"]["unseen"]
    out = str(tmp_path / "pred")
    run_cli("-m", "predict", demo_cache, "--run", head_run(runs, "transformer"), "--out", out,
            "--labels", ",".join(unseen), "--quiet")
    summary = read_json(os.path.join(out, "summary.json"))
    assert summary["mode"] == "open-vocabulary" and summary["class_names"] == unseen
    rows = read_csv(os.path.join(out, "predictions.csv"))
    assert {r["pred_1"] for r in rows} <= set(unseen)
    test = set(read_json(os.path.join(head_run(runs, "transformer"), "split.json"))["test"])
    held = [r for r in rows if r["id"] in test and r["label"] in unseen]
    assert len(held) == metrics["test_unseen_zeroshot"]["n"] > 0
    top1 = sum(r["pred_1"] == r["label"] for r in held) / len(held)
    assert top1 == pytest.approx(metrics["test_unseen_zeroshot"]["top1"], abs=1.01 / len(held))


def test_linear_refuses_names(runs, predicted, tmp_path):
    out, _ = predicted
    res = run_cli("-m", "predict", os.path.join(out, "cache.h5"), "--run", head_run(runs, "linear"),
                  "--labels", "a,b", "--out", str(tmp_path / "p"), check=False)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "linear" in res.stderr


def test_refuses_cache_of_another_model_or_n(runs, new_clips, tmp_path):
    from train.synthetic import write_synthetic_cache
    run = head_run(runs, "transformer")
    for frames, word in ((8, "N=8"), (100, "synthetic:0")):
        cache = str(tmp_path / f"n{frames}.h5")
        write_synthetic_cache(cache, num_classes=4, per_class=2, frames=frames, dim=64)
        for extra in ((cache,), (new_clips, "--cache", cache)):   # as SOURCE, and as the extraction target
            res = run_cli("-m", "predict", *extra, "--run", run, "--out", str(tmp_path / "p"), check=False)
            assert res.returncode == 3, res.stderr
            assert len(res.stderr.strip().splitlines()) == 1 and word in res.stderr and "Traceback" not in res.stderr


def test_page_escapes_class_names(predicted, tmp_path):
    out, _ = predicted
    pred = str(tmp_path / "xss")
    run_cli("-m", "predict", os.path.join(out, "cache.h5"), "--labels", f"{XSS},a ring pulsing", "--out", pred,
            "--html", "--quiet")
    from helpers_browser import dump_dom
    dom = dump_dom("file://" + os.path.join(pred, "timeline.html"))
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom
    assert '<img src="x"' not in dom and "onerror=" not in dom.replace("onerror=alert(1)&gt;", "")
    vtts = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(pred, "subtitles")) for f in fs]
    assert vtts and all("<img" not in open(v, encoding="utf-8").read() for v in vtts)
