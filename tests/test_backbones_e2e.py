"""Several backbones from one decode, each cache used end to end, and compared in one report (issue 25)."""
import json

import numpy as np
import pytest

from cache.reader import open_cache
from conftest import head_run, run_cli
from extract.backbones import cache_name

pytestmark = pytest.mark.slow

TINY, TINY_OC, SQUASH = "random:tiny", "random:open_clip:clipvid-tiny", "random:open_clip:clipvid-tiny-squash"
FAST = ("--frames", "8", "--workers", "1", "--quiet")


def _extract(source, *args):
    return run_cli("-m", "extract", source, *args, *FAST, timeout=600)


def _read(path):
    """{id: (frames [N, D] float16, times [N], n_distinct)} of a cache, as stored."""
    with open_cache(str(path)) as r:
        rows = np.arange(r.num_videos)
        emb = r.emb(rows)
        times = r.times(rows)
        return {str(v): (emb[i], times[i], int(r.n_distinct[i])) for i, v in enumerate(r.ids)}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    base = tmp_path_factory.mktemp("backbones")
    run_cli("-m", "extract.synthetic", base / "videos", "--per-class", "3", "--quiet")
    return base


@pytest.fixture(scope="module")
def singles(demo):
    """Each backbone extracted alone, as a one-backbone run makes its cache."""
    out = {}
    for spec in (TINY, TINY_OC, SQUASH):
        out[spec] = demo / "single" / cache_name(spec)
        _extract(demo / "videos", "--out", out[spec], "--clip-model", spec)
    return out


@pytest.fixture(scope="module")
def mixed(demo):
    """One run, two backbones of different geometry (centre crop and squash): one cache each."""
    done = _extract(demo / "videos", "--out-dir", demo / "mixed", "--clip-model", TINY, "--clip-model", SQUASH)
    assert done.stdout.count("cached 36,") == 2, done.stdout
    return {spec: demo / "mixed" / cache_name(spec) for spec in (TINY, SQUASH)}


def _same_as_alone(alone_path, shared_path) -> None:
    alone, shared = _read(alone_path), _read(shared_path)
    assert set(alone) == set(shared) and len(alone) == 36
    for vid, (emb, t, distinct) in alone.items():
        assert np.array_equal(shared[vid][0], emb), vid        # the same frames, so the same embeddings
        assert np.array_equal(shared[vid][1], t) and shared[vid][2] == distinct


def test_two_backbones_of_one_geometry_give_exactly_what_each_gives_alone(demo, singles):
    _extract(demo / "videos", "--out-dir", demo / "same", "--clip-model", TINY, "--clip-model", TINY_OC)
    for spec in (TINY, TINY_OC):
        _same_as_alone(singles[spec], demo / "same" / cache_name(spec))


def test_two_backbones_of_two_geometries_give_exactly_what_each_gives_alone(singles, mixed):
    # one decode, the picked frames converted once per geometry: centre crop for one, squash for the other
    for spec in (TINY, SQUASH):
        _same_as_alone(singles[spec], mixed[spec])
        with open_cache(str(mixed[spec])) as r:
            assert json.loads(r.settings["preprocess"])["resize"] == ("squash" if spec == SQUASH else "crop")


def test_a_second_run_resumes_each_cache(demo, mixed):
    again = _extract(demo / "videos", "--out-dir", demo / "mixed", "--clip-model", TINY, "--clip-model", SQUASH)
    assert again.stdout.count("cached 0, skipped 36 already cached") == 2, again.stdout


@pytest.fixture(scope="module")
def trained(demo, mixed):
    runs = {}
    for spec, cache in mixed.items():
        runs[spec] = demo / "runs" / cache_name(spec)
        run_cli("-m", "train", cache, "--out", runs[spec], "--head", "meanpool,linear,lstm", "--epochs", "2",
                "--quiet", timeout=600)
    return runs


def test_open_clip_cache_trains_evaluates_predicts_and_searches(demo, mixed, trained):
    cache, runs = mixed[SQUASH], trained[SQUASH]
    report = demo / "report_squash"
    run_cli("-m", "evaluate", cache, "--runs", runs, "--out", report, "--resamples", "100", "--shots", "none",
            "--quiet", timeout=600)
    data = json.loads((report / "metrics.json").read_text())
    assert data["provenance"]["clip_model"] == SQUASH and {h["head"] for h in data["heads"]} >= {"lstm", "linear"}
    # predict: the head, and class names given now (encoded by the cache's own backbone and templates)
    run_cli("-m", "predict", cache, "--run", head_run(runs, "lstm"), "--out", demo / "pred_head", "--quiet",
            timeout=600)
    run_cli("-m", "predict", cache, "--labels", "a ring pulsing,a bar falling down", "--out", demo / "pred_zs",
            "--quiet", timeout=600)
    for folder in ("pred_head", "pred_zs"):
        assert (demo / folder / "predictions.csv").read_text().count("\n") >= 36
    found = run_cli("-m", "evaluate.search", cache, "a ring pulsing", "--top", "3", "--quiet", timeout=600)
    assert found.stdout.strip() and "Traceback" not in found.stderr


def test_predict_encodes_names_with_the_caches_backbone_and_templates(mixed):
    import torch
    from extract.clip_model import class_text_embeddings, load_clip
    from predict.classes import encode_names
    with open_cache(str(mixed[SQUASH])) as r:
        mine = encode_names(r, ["a ring pulsing", "a bar falling down"], "cpu")     # [2, D]
        model = load_clip(SQUASH, torch.device("cpu"))
        want = class_text_embeddings(model, ["a ring pulsing", "a bar falling down"], r.prompt_templates)
        other = class_text_embeddings(model, ["a ring pulsing", "a bar falling down"], ["{}"])
    assert np.allclose(mine, want.astype(np.float32)) and not np.allclose(mine, other.astype(np.float32), atol=1e-3)


def test_comparison_report_table_zero_shot_and_paired_interval(demo, mixed, trained):
    out = demo / "compare"
    done = run_cli("-m", "evaluate", mixed[TINY], mixed[SQUASH], "--runs", trained[TINY], trained[SQUASH],
                   "--out", out, "--resamples", "200", "--quiet", timeout=600)
    assert "2 backbones x 3 heads compared" in done.stdout
    data = json.loads((out / "metrics.json").read_text())
    labels = [b["label"] for b in data["backbones"]]
    assert labels == [TINY, SQUASH] and data["common_test_videos"] > 0
    for b in data["backbones"]:
        z = b["zero_shot"]
        assert z["videos"] == data["common_test_videos"] and z["low"] <= z["value"] <= z["high"]
        assert set(b["heads"]) == set(data["heads"]) and len(data["heads"]) == 3
    pairs = {p["head"]: p for p in data["paired"]}
    assert set(pairs) == set(data["heads"]) | {"zero-shot (mean-pool)"}
    for p in pairs.values():
        assert (p["a"], p["b"]) == (TINY, SQUASH) and p["low"] <= p["diff"] <= p["high"] and p["videos"] > 0
    # the paired difference is the difference of the two backbones' own scores on the same videos
    z = [b["zero_shot"]["value"] for b in data["backbones"]]
    assert pairs["zero-shot (mean-pool)"]["diff"] == pytest.approx(z[0] - z[1])
    md = (out / "report.md").read_text()
    assert "Test top-1 by backbone and head" in md and "squash" in md and "RANDOM CLIP WEIGHTS" in md
    refused = run_cli("-m", "evaluate", mixed[TINY], mixed[SQUASH], "--runs", trained[TINY], "--out", out,
                      check=False)
    assert refused.returncode == 2 and "one runs folder per cache" in refused.stderr
