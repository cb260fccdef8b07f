"""The shared conventions in clipvid/: the JSON writer, atomic files and class-name matching."""
import json
import math
import os

import numpy as np
import pytest

from cache.schema import make_settings
from cache.writer import CacheWriter
from clipvid.atomic import AtomicFile, atomic_path
from clipvid.jsonfile import write_json
from clipvid.names import class_key, distinct_names, name_index
from evaluate.__main__ import main as evaluate
from predict.classes import parse_labels
from predict.score import label_map
from train.cli import main as train
from train.splits import choose_open_set
from train.synthetic import synthetic_videos, write_synthetic_cache


def test_write_json_nan_as_null_numpy_as_numbers_and_whole(tmp_path):
    path = str(tmp_path / "m.json")
    write_json(path, {"a": float("nan"), "b": np.float32(0.5), "c": [np.int64(3), math.inf], "é": "ü"})
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert json.loads(text) == {"a": None, "b": 0.5, "c": [3, None], "é": "ü"} and "NaN" not in text
    with pytest.raises(TypeError):   # a value JSON cannot hold: the old file stays, no temporary is left
        write_json(path, {"x": object()})
    assert json.load(open(path, encoding="utf-8"))["b"] == 0.5 and os.listdir(tmp_path) == ["m.json"]


def test_atomic_file_and_path_replace_only_when_whole(tmp_path):
    path = str(tmp_path / "out.csv")
    with AtomicFile(path) as f:
        f.write("old\n")
    with pytest.raises(RuntimeError):
        with AtomicFile(path) as f:
            f.write("half")
            raise RuntimeError("killed")
    out = AtomicFile(path)
    out.file.write("abandoned")
    out.abandon()
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path, ".csv") as tmp:
            assert tmp.endswith(".csv") and tmp != path
            open(tmp, "w").write("interrupted")
            raise KeyboardInterrupt
    assert open(path).read() == "old\n" and os.listdir(tmp_path) == ["out.csv"]


def test_class_key_ignores_case_space_and_underscores():
    assert class_key("  Playing_Violin ") == class_key("playing  violin") == "playing violin"
    assert class_key("playing violin") != class_key("playing viola")
    assert name_index(["Jump", "jump ", "run"]) == {"jump": 0, "run": 2}
    assert distinct_names(["a cat", "A_Cat", "dog"]) == ["a cat", "dog"]
    assert parse_labels("a cat, A_Cat ,dog", None) == ["a cat", "dog"]


def test_predict_and_splits_match_names_the_one_way():
    assert label_map(["Playing_Violin", "juggling", "surfing"], ["playing violin", "JUGGLING"]).tolist() == [0, 1, -1, -1]
    names = ["class a", "Class B", "c", "d"]
    seen, unseen = choose_open_set(names, [0, 1, 2, 3], None, ["CLASS_A ", "class b"], seed=0)
    assert (seen, unseen) == ([0, 1], [2, 3])
    with pytest.raises(ValueError, match="'e'"):
        choose_open_set(names, [0, 1, 2, 3], None, ["class a", "e"], seed=0)


def test_cross_cache_evaluation_matches_respelled_class_names(tmp_path, capsys):
    home = str(tmp_path / "home.h5")
    names = write_synthetic_cache(home, num_classes=4, per_class=10, frames=8, dim=16, seed=0)
    # Another cache in the same embedding space whose classes are spelled "CLASS_NAME ".
    other = str(tmp_path / "other.h5")
    _, text, emb, labels = synthetic_videos(4, 10, 8, 16, 1, None, 0.3)   # [C, D], [V, N, D], [V]
    respelled = [n.upper().replace(" ", "_") + " " for n in names]
    writer = CacheWriter(other, make_settings("synthetic:0", "synthetic-0-16", True, 16, 8, {"kind": "synthetic"}, ["{}"]))
    writer.set_classes(respelled, text)
    for v, c in enumerate(labels):
        writer.add_video(f"elsewhere/{v}.mp4", emb[v], np.linspace(0, 1, 8), respelled[c], n_distinct=8, duration=1.0)
    writer.close()
    runs, report = str(tmp_path / "runs"), str(tmp_path / "report")
    assert train([home, "--out", runs, "--head", "meanpool", "--quiet"]) == 0
    status = evaluate([other, "--runs", runs, "--out", report, "--shots", "none", "--resamples", "10", "--quiet"])
    assert status == 0, capsys.readouterr().err
    (head,) = json.load(open(os.path.join(report, "metrics.json")))["heads"]
    assert head["cross_dataset"] and head["test_videos"] == len(labels)


def test_head_registry_holds_the_names_and_their_properties():
    from train.registry import ALL_METHODS, BASELINES, HEADS, PROBE, TRAINED
    assert ALL_METHODS == ("midframe", "meanpool", "maxpool", "vote", "linear", "lstm", "transformer", "xclip")
    assert [n for n in ALL_METHODS if HEADS[n].learns] == [PROBE, *TRAINED]
    assert [n for n in ALL_METHODS if HEADS[n].cheap] == [*BASELINES, PROBE]
    assert [n for n in ALL_METHODS if HEADS[n].needs_pooled] == [PROBE]
    for name in TRAINED:
        spec = HEADS[name]
        assert spec.trains and spec.needs_stats and "lr" in spec.defaults and spec.defaults == spec.module.DEFAULTS
    assert HEADS["lstm"].former == {"bidirectional": False}
