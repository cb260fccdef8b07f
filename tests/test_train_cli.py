"""`python -m train` on real synthetic HDF5 caches: outputs, determinism, checkpoints, open set, errors."""
import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from cache.reader import open_cache
from train.api import CheckpointError, load_method
from train.cli import main
from train.data import frame_subset
from train.synthetic import write_synthetic_cache
from conftest import head_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--epochs", "3", "--quiet"]


def run_train(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("syn") / "syn.h5")
    write_synthetic_cache(path, num_classes=6, per_class=15, frames=16, dim=32, seed=0, unlabelled=3)
    return path


@pytest.fixture(scope="module")
def runs(cache, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runs"))
    assert main([cache, "--out", out, "--head", "all", *FAST]) == 0
    return out


def read_predictions(run_dir):
    with open(os.path.join(run_dir, "predictions.csv"), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_every_head_writes_its_run_folder(cache, runs):
    with open_cache(cache) as r:
        ids, names, V, D = list(r.ids), list(r.class_names), r.num_videos, r.dim
        fingerprint = r.fingerprint
    for head in ("midframe", "meanpool", "maxpool", "vote", "linear", "lstm", "transformer", "xclip"):
        run = head_run(runs, head)
        m = json.load(open(os.path.join(run, "metrics.json")))
        assert m["head"] == head and m["cache_fingerprint"] == fingerprint and m["frames"] == 16
        assert m["split"] == "split.json" and m["open_set"] is None
        for block in ("test", "val"):
            assert 0.0 <= m[block]["top1"] <= m[block]["top5"] <= 1.0 and 0.0 <= m[block]["mean_class"] <= 1.0
        trained = head in ("lstm", "transformer", "xclip")
        assert (len(m["history"]) == m["epochs_run"] > 0) == trained
        assert all(set(h) >= {"epoch", "train_loss", "val_loss", "val_top1"} for h in m["history"])
        assert m["seconds"] > 0 and "seconds_per_epoch" in m
        split = json.load(open(os.path.join(run, "split.json")))
        parts = [set(split[k]) for k in ("train", "val", "test")]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert len(parts[0] | parts[1] | parts[2]) == V - 3  # every labelled video, no unlabelled one
        preds = read_predictions(run)
        assert [p["id"] for p in preds] == split["test"]
        assert all(p["true"] in names and p["predicted"] in names and 0 <= float(p["score"]) <= 1 for p in preds)
        assert np.mean([p["true"] == p["predicted"] for p in preds]) == pytest.approx(m["test"]["top1"])
        emb = np.load(os.path.join(run, "video_emb.npy"))
        assert emb.shape == (V, D) and emb.dtype == np.float32 and np.isfinite(emb).all()
        blob = torch.load(os.path.join(run, "head.pt"), weights_only=True)
        assert blob["class_names"] == names and blob["cache_fingerprint"] == fingerprint
    assert set(ids) >= set(split["test"])


def test_checkpoint_round_trips_to_identical_predictions(cache, runs):
    with open_cache(cache) as r:
        for head in ("lstm", "transformer", "xclip", "linear", "vote"):
            run = head_run(runs, head)
            method = load_method(run, r, device="cpu")
            test = json.load(open(os.path.join(run, "split.json")))["test"]
            rows = [list(r.ids).index(i) for i in test]
            logits = method.logits(r.emb(rows), r.text_emb)
            probs = method.probabilities(logits)
            pred = logits.argmax(1)
            saved = read_predictions(run)
            assert [r.class_names[p] for p in pred] == [s["predicted"] for s in saved]
            assert np.allclose(probs[np.arange(len(rows)), pred], [float(s["score"]) for s in saved], atol=2e-6)
            emb = method.video_embeddings(r.emb())
            assert np.array_equal(emb, np.load(os.path.join(run, "video_emb.npy")))


def test_mismatched_checkpoints_are_refused(runs, tmp_path):
    other_model = str(tmp_path / "other_model.h5")
    write_synthetic_cache(other_model, num_classes=6, per_class=4, frames=16, dim=32, seed=7)
    other_classes = str(tmp_path / "other_classes.h5")
    write_synthetic_cache(other_classes, num_classes=8, per_class=4, frames=16, dim=32, seed=0)
    for path, expect in ((other_model, "made for another cache"), (other_classes, "another class list")):
        with open_cache(path) as r:
            for head in ("lstm", "meanpool"):
                with pytest.raises(CheckpointError) as err:
                    load_method(head_run(runs, head), r, device="cpu")
                msg = str(err.value)
                assert expect in msg and os.path.join(head_run(runs, head), "head.pt") in msg and "\n" not in msg
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_method(str(tmp_path / "nothing"))
    for name, damage in (("truncated", lambda b: b[:len(b) // 2]), ("scribbled", lambda b: b"not a checkpoint")):
        run = tmp_path / name                      # a real checkpoint, then damaged as a disk or a copy might
        shutil.copytree(head_run(runs, "lstm"), run)
        blob = (run / "head.pt").read_bytes()
        (run / "head.pt").write_bytes(damage(blob))
        with pytest.raises(ValueError) as err:     # the API promises a ValueError (CheckpointError) naming the file
            load_method(str(run))
        msg = str(err.value)
        assert isinstance(err.value, CheckpointError) and str(run / "head.pt") in msg and "\n" not in msg, msg


def test_cpu_training_repeats_exactly(cache, runs, tmp_path):
    out = str(tmp_path / "again")
    assert main([cache, "--out", out, "--head", "transformer,lstm", *FAST]) == 0
    for head in ("transformer", "lstm"):
        first = torch.load(os.path.join(head_run(runs, head), "head.pt"), weights_only=True)["state_dict"]
        second = torch.load(os.path.join(head_run(out, head), "head.pt"), weights_only=True)["state_dict"]
        assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
        a, b = (json.load(open(os.path.join(head_run(d, head), "metrics.json"))) for d in (runs, out))
        assert a["history"] == b["history"]


def test_chunked_reads_give_the_same_run(cache, runs, tmp_path):
    out = str(tmp_path / "chunked")
    assert main([cache, "--out", out, "--head", "xclip", "--max-memory-mb", "0.01", *FAST]) == 0
    a, b = (json.load(open(os.path.join(head_run(d, "xclip"), "metrics.json"))) for d in (runs, out))
    assert a["history"] == b["history"] and a["test"] == b["test"]


@pytest.mark.slow
def test_training_needs_only_the_cache(cache, tmp_path):
    # Poison clip, extract and ffmpeg in sys.modules: importing any of them raises ImportError.
    code = ("import sys\n"
            "for name in ('clip', 'extract', 'ffmpeg', 'imageio_ffmpeg'):\n"
            "    sys.modules[name] = None\n"
            "from train.cli import main\n"
            f"code = main([{cache!r}, '--out', {str(tmp_path)!r}, '--head', 'all', '--epochs', '2', '--quiet'])\n"
            "assert all(sys.modules.get(n) is None for n in ('clip', 'extract', 'ffmpeg'))\n"
            "sys.exit(code)\n")
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert os.path.exists(os.path.join(head_run(tmp_path, "xclip"), "head.pt")) and "xclip" in proc.stdout


def test_train_package_never_imports_clip_or_extract():
    import ast
    folder = os.path.join(ROOT, "train")
    for name in os.listdir(folder):
        if name.endswith(".py"):
            tree = ast.parse(open(os.path.join(folder, name)).read())
            for node in ast.walk(tree):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                assert not any(m.split(".")[0] in ("clip", "extract") for m in mods), (name, mods)


def test_frames_subset_and_open_set(cache, tmp_path):
    classes = tmp_path / "seen.txt"
    classes.write_text("motion 0 forwards\nmotion 0 backwards\nstill 0\nstill 1\n")
    out = str(tmp_path / "open")
    assert main([cache, "--out", out, "--head", "lstm,linear", "--frames", "5", "--train-classes", str(classes),
                 *FAST]) == 0
    m = json.load(open(os.path.join(head_run(out, "lstm"), "metrics.json")))
    assert m["frames"] == 5 and m["config"]["frames"] == 5
    assert m["open_set"] == {"seen": ["motion 0 forwards", "motion 0 backwards", "still 0", "still 1"],
                             "unseen": ["still 2", "still 3"]}
    assert m["test_seen"]["n"] + m["test_unseen"]["n"] == m["test"]["n"]
    split = json.load(open(os.path.join(head_run(out, "lstm"), "split.json")))
    with open_cache(cache) as r:
        label = dict(zip(r.ids, (r.class_names[i] if i >= 0 else None for i in r.labels)))
        method = load_method(head_run(out, "lstm"), r, device="cpu")
        assert method.logits(r.emb([0, 1])[:, frame_subset(r.frames, 5)], r.text_emb).shape == (2, 6)
    assert {label[i] for i in split["train"] + split["val"]} <= set(m["open_set"]["seen"])
    assert {label[i] for i in split["test"]} >= set(m["open_set"]["unseen"])
    lin = json.load(open(os.path.join(head_run(out, "linear"), "metrics.json")))
    assert lin["test_unseen"]["top1"] == 0.0  # a probe cannot name classes it never saw
    out2 = str(tmp_path / "holdout")
    assert main([cache, "--out", out2, "--head", "meanpool", "--holdout-classes", "2", *FAST]) == 0
    held = json.load(open(os.path.join(head_run(out2, "meanpool"), "metrics.json")))["open_set"]
    assert len(held["unseen"]) == 2 and len(held["seen"]) == 4


def test_ids_that_need_quoting_survive_predictions_csv(tmp_path):
    from cache import schema as S
    from cache.writer import CacheWriter
    path = str(tmp_path / "odd.h5")
    rng = np.random.default_rng(0)
    w = CacheWriter(path, S.make_settings("m", "w", True, 8, 4, {}, ["{}"]))
    w.set_classes(["a, \"quoted\"", "b\nline"], rng.standard_normal((2, 8)))
    odd = ['x,1.mp4', 'say "hi".mp4', 'two\nlines.mp4', 'ünï cödé.mp4']
    for i in range(12):
        w.add_video(f"{odd[i % 4]}-{i}", rng.standard_normal((4, 8)), np.arange(4.0),
                    ["a, \"quoted\"", "b\nline"][i % 2], split="test" if i >= 8 else "train")
    w.close()
    assert main([path, "--out", str(tmp_path / "r"), "--head", "meanpool", "--quiet"]) == 0
    preds = read_predictions(head_run(tmp_path / "r", "meanpool"))
    with open_cache(path) as r:
        assert [p["id"] for p in preds] == list(r.ids[8:])
        assert {p["true"] for p in preds} == set(r.class_names)


@pytest.mark.slow
def test_errors_are_one_line_with_exit_status(cache, tmp_path, capsys):
    one_class = str(tmp_path / "one.h5")
    write_synthetic_cache(one_class, num_classes=1, per_class=5, frames=4, dim=8, num_pairs=0)
    tiny = str(tmp_path / "tiny.h5")
    write_synthetic_cache(tiny, num_classes=2, per_class=1, frames=4, dim=8, num_pairs=0)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    out = str(tmp_path / "o")
    cases = [
        ([one_class], 3, "at least 2 classes"),
        ([tiny], 3, "too few labelled videos"),
        ([str(junk)], 3, "not a readable HDF5 file"),
        ([str(tmp_path / "missing.h5")], 3, "no such cache file"),
        ([cache, "--head", "lstm,bogus"], 2, "unknown head 'bogus'"),
        ([cache, "--frames", "99"], 2, "--frames must be between 1 and 16"),
        ([cache, "--train-classes", str(tmp_path / "nope.txt")], 2, "cannot read"),
        ([cache, "--holdout-classes", "9"], 2, "--holdout-classes must be"),
        ([cache, "--epochs", "0"], 2, "--epochs must be at least 1"),
    ]
    for args, status, text in cases:
        assert main([*args, "--out", out, "--quiet"]) == status, args
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], (args, lines)
    # The same through the real command line: exit status, one line, no traceback.
    proc = run_train(one_class, "--out", out)
    assert proc.returncode == 3 and proc.stderr.startswith(f"error: {one_class}: ") and "Traceback" not in proc.stderr
    assert run_train("--help").returncode == 0


def test_seeds_share_one_split_and_settings_name_the_folder(cache, tmp_path, capsys):
    out = str(tmp_path / "seeds")
    assert main([cache, "--out", out, "--head", "lstm,meanpool", "--seeds", "0,1", *FAST]) == 0
    tag = os.path.join(out, "lstm-f16-e3-lr0.003")
    assert sorted(os.listdir(tag)) == ["seed0", "seed1"] and os.listdir(os.path.join(out, "meanpool-f16")) == ["seed0"]
    runs = [json.load(open(os.path.join(tag, s, "metrics.json"))) for s in ("seed0", "seed1")]
    assert [m["seed"] for m in runs] == [0, 1] and all(m["split_seed"] == 0 and m["epochs"] == 3 for m in runs)
    assert runs[0]["command"].startswith("python -m train ") and "--seeds 0,1" in runs[0]["command"]
    splits = [json.load(open(os.path.join(tag, s, "split.json"))) for s in ("seed0", "seed1")]
    assert splits[0] == splits[1]                         # a seed sweep never changes the test set
    w = [torch.load(os.path.join(tag, s, "head.pt"), weights_only=True)["state_dict"] for s in ("seed0", "seed1")]
    assert not torch.equal(w[0]["out.weight"], w[1]["out.weight"])
    capsys.readouterr()
    # Other settings go beside; the same settings and seed are replaced, with a note.
    assert main([cache, "--out", out, "--head", "lstm", "--frames", "8", "--seed", "1", *FAST]) == 0
    assert main([cache, "--out", out, "--head", "lstm", "--seed", "1", *FAST]) == 0
    err = capsys.readouterr().err
    assert f"replacing the earlier run in {os.path.join(tag, 'seed1')}" in err and err.count("replacing") == 1
    assert os.path.exists(os.path.join(out, "lstm-f8-e3-lr0.003", "seed1", "head.pt"))
    assert main([cache, "--out", out, "--head", "lstm", "--split-seed", "5", *FAST]) == 0
    other = json.load(open(os.path.join(out, "lstm-f16-e3-lr0.003-split5", "seed0", "split.json")))
    assert other["test"] != splits[0]["test"]
    capsys.readouterr()
    assert main([cache, "--out", out, "--head", "lstm,vote", "--seeds", "2,3", "--list-runs"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"lstm\t{os.path.join(out, 'lstm-f16-e60-lr0.003', 'seed2')}",
        f"lstm\t{os.path.join(out, 'lstm-f16-e60-lr0.003', 'seed3')}",
        f"vote\t{os.path.join(out, 'vote-f16', 'seed2')}"]
    assert main([cache, "--out", out, "--seeds", "1,x"]) == 2
    assert "--seeds" in capsys.readouterr().err
