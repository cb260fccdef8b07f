"""A CSV with only a `path` column lists unlabelled videos: extract caches them, predict labels them."""
import csv
import os

import pytest

from cache.reader import open_cache
from conftest import run_cli
from hostile_media import FAST, clip, extract

pytestmark = pytest.mark.slow   # real extractions on a real Dask cluster


@pytest.fixture(scope="module")
def path_only_csv(tmp_path_factory):
    base = tmp_path_factory.mktemp("unlabelled")
    os.makedirs(base / "clips")
    for name in ("a.mp4", "b.mkv"):
        clip(base / "clips" / name)
    with open(base / "list.csv", "w", encoding="utf-8", newline="") as f:
        f.write("path\nclips/a.mp4\nclips/b.mkv\n")
    return base


def test_extract_caches_a_path_only_csv_as_unlabelled(path_only_csv):
    out = path_only_csv / "cache.h5"
    proc = extract(path_only_csv / "list.csv", out)
    assert proc.returncode == 0, proc.stderr
    assert "label" not in proc.stderr, proc.stderr   # no warning about a column nobody asked for
    with open_cache(os.fspath(out)) as r:
        assert sorted(r.ids) == ["clips/a.mp4", "clips/b.mkv"]
        assert r.labels.tolist() == [-1, -1] and list(r.class_names) == []
        assert r.emb().shape[:2] == (2, 8)   # [V, N, D]: both videos really embedded


def test_predict_labels_a_path_only_csv(path_only_csv):
    pred = path_only_csv / "pred"
    proc = run_cli("-m", "predict", path_only_csv / "list.csv", "--labels", "a test pattern,a cat",
                   "--out", pred, *FAST, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with open(pred / "predictions.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["id"] for r in rows) == ["clips/a.mp4", "clips/b.mkv"]
    assert all(r["label"] == "" and r["pred_1"] in ("a test pattern", "a cat") for r in rows), rows
