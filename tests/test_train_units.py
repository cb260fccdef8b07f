"""Pure parts of the training stage: frame subsets, splits, baselines, metrics, heads at initialisation."""
import numpy as np
import pytest
import torch

from train.baselines import BaselineMethod, vote_logits
from train.data import frame_subset
from train.heads import resample_positions
from train.loop import lr_factor
from train.method import scaled_cosine
from train.metrics import cross_entropy, mean_class_accuracy, topk_accuracy
from train.registry import HEADS, TRAINED, HeadMethod, build_module
from train.splits import choose_open_set, make_splits


def test_frame_subset_is_centred_sorted_and_mirror_symmetric():
    assert frame_subset(100, 10).tolist() == [5, 15, 25, 35, 45, 55, 65, 75, 85, 95]
    assert frame_subset(100, 1).tolist() == [50]
    assert frame_subset(7, 7).tolist() == list(range(7))
    assert frame_subset(7, 50).tolist() == list(range(7))
    assert frame_subset(7, None).tolist() == list(range(7))
    for n, k in ((100, 16), (16, 5), (30, 7)):
        idx = frame_subset(n, k)
        assert len(set(idx)) == k and np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < n
        # A reversed video's rows are the mirrored rows, to within one (time-reversed twins match).
        assert np.abs((n - 1 - idx[::-1]) - idx).max() <= 1
    with pytest.raises(ValueError):
        frame_subset(10, 0)


def test_stratified_splits_cover_every_labelled_video_once_and_repeat_with_the_seed():
    labels = np.array([0] * 20 + [1] * 10 + [2] * 3 + [-1] * 4)
    splits, how = make_splits([""] * len(labels), labels, seed=3)
    assert how == "stratified"
    rows = np.concatenate(list(splits.values()))
    assert sorted(rows.tolist()) == list(range(33))  # every labelled video once, no unlabelled one
    for c in (0, 1, 2):
        assert np.sum(labels[splits["train"]] == c) >= 1
        assert np.sum(labels[splits["test"]] == c) >= 1
    assert np.sum(labels[splits["test"]] == 0) == 4  # 20% of 20
    again, _ = make_splits([""] * len(labels), labels, seed=3)
    other, _ = make_splits([""] * len(labels), labels, seed=4)
    assert all(np.array_equal(splits[k], again[k]) for k in splits)
    assert not all(np.array_equal(splits[k], other[k]) for k in splits)


def test_split_column_is_used_and_val_is_carved_from_train():
    labels = np.array([0, 1] * 10)
    column = ["train"] * 14 + ["test"] * 6
    splits, how = make_splits(column, labels, seed=0)
    assert how == "column"
    assert splits["test"].tolist() == list(range(14, 20))
    assert len(splits["val"]) > 0 and set(splits["val"]) <= set(range(14))
    assert set(splits["train"]).isdisjoint(splits["val"])
    with pytest.raises(ValueError, match="unknown split value"):
        make_splits(["train", "holiday"], np.array([0, 1]), 0)


def test_open_set_choice():
    names = ["a", "b", "c", "d"]
    seen, unseen = choose_open_set(names, [0, 1, 2, 3], 2, None, seed=0)
    assert len(seen) == 2 and len(unseen) == 2 and set(seen) | set(unseen) == {0, 1, 2, 3}
    assert choose_open_set(names, [0, 1, 2, 3], None, ["a", "c", "d"], 0) == ([0, 2, 3], [1])
    assert choose_open_set(names, [0, 1, 2, 3], None, None, 0) is None
    with pytest.raises(ValueError, match="not in the cache"):
        choose_open_set(names, [0, 1, 2, 3], None, ["a", "zebra"], 0)
    with pytest.raises(ValueError, match="between 1 and 2"):
        choose_open_set(names, [0, 1, 2, 3], 3, None, 0)


def test_vote_counts_frames_and_breaks_ties_by_mean_cosine():
    text = np.eye(3, dtype=np.float32)
    x = np.array([[[1, 0, 0], [1, 0, 0], [0, 1, 0]],               # 2 votes for class 0
                  [[0.9, 0.1, 0], [0.3, 1, 0], [0, 0, 1]]], np.float32)  # 1-1-1 tie
    logits = vote_logits(x, text)
    assert np.rint(logits).tolist() == [[2, 1, 0], [1, 1, 1]]
    assert logits[1].argmax() == 0  # the highest mean cosine wins the tie
    method = BaselineMethod("vote", ["a", "b", "c"], {})
    assert np.allclose(method.probabilities(method.logits(x, text)), [[2 / 3, 1 / 3, 0], [1 / 3, 1 / 3, 1 / 3]])


@pytest.mark.parametrize("name", ["meanpool", "maxpool", "vote"])
def test_order_blind_baselines_ignore_time_order(name):
    rng = np.random.default_rng(0)
    x, text = rng.standard_normal((5, 9, 16)).astype(np.float32), rng.standard_normal((4, 16))
    method = BaselineMethod(name, list("abcd"), {})
    assert np.allclose(method.logits(x, text), method.logits(x[:, ::-1], text), atol=1e-5)
    assert method.video_embeddings(x).shape == (5, 16)


def test_metrics_against_brute_force():
    rng = np.random.default_rng(1)
    logits, true = rng.standard_normal((200, 7)), rng.integers(0, 7, 200)
    order = np.argsort(-logits, axis=1)
    for k in (1, 3, 5, 10):
        brute = np.mean([t in row[:k] for t, row in zip(true, order)])
        assert topk_accuracy(logits, true, k) == pytest.approx(brute)
    pred = logits.argmax(1)
    brute = np.mean([np.mean(pred[true == c] == c) for c in np.unique(true)])
    assert mean_class_accuracy(pred, true) == pytest.approx(brute)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert cross_entropy(logits, true) == pytest.approx(-np.mean(np.log(p[np.arange(200), true])))


@pytest.mark.parametrize("name", TRAINED)
def test_untrained_head_equals_meanpool(name):
    torch.manual_seed(0)
    config = {"head": name, "dim": 16, "frames": 12, "pos_len": 12, **HEADS[name].defaults}
    method = HeadMethod(name, list("abcd"), config, build_module(config), torch.device("cpu"))
    rng = np.random.default_rng(2)
    x, text = rng.standard_normal((6, 12, 16)).astype(np.float32), rng.standard_normal((4, 16))
    mean = BaselineMethod("meanpool", list("abcd"), {})
    assert np.allclose(method.video_embeddings(x), x.mean(1), atol=1e-5)
    assert np.allclose(method.logits(x, text), mean.logits(x, text), atol=1e-3)
    # Any number of frames works (evaluation scores subsets of the cached rows).
    assert method.logits(x[:, :5], text).shape == (6, 4)


def test_position_resampling_and_schedule():
    table = torch.arange(8.0).reshape(4, 2)
    assert torch.equal(resample_positions(table, 4), table)
    assert resample_positions(table, 8).shape == (8, 2)
    assert lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10) == pytest.approx(1.0)
    assert lr_factor(100, 100, 10) == pytest.approx(0.0)
    assert 0 < lr_factor(55, 100, 10) < 1


def test_scaled_cosine_is_clip_style():
    v, t = np.array([[3.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 2.0]])
    assert np.allclose(scaled_cosine(v, t), [[100.0, 0.0]])


@pytest.mark.parametrize("name", TRAINED)
def test_weight_decay_spares_biases_norms_temperature_and_tables(name):
    from train.loop import param_groups
    config = {"head": name, "dim": 16, "frames": 12, "pos_len": 12, **HEADS[name].defaults}
    module = build_module(config)
    decayed, spared = param_groups(module, 0.05)
    assert decayed["weight_decay"] == 0.05 and spared["weight_decay"] == 0.0
    names = {id(p): n for n, p in module.named_parameters()}
    spared_names = {names[id(p)] for p in spared["params"]}
    assert all(p.ndim >= 2 for p in decayed["params"])
    assert "log_scale" in spared_names and any(n.endswith(".pos") for n in spared_names) == (name != "lstm")
    assert all(names[id(p)].split(".")[-1] not in ("bias", "pos", "extra", "log_scale") for p in decayed["params"])
    assert len(decayed["params"]) + len(spared["params"]) == len(list(module.parameters()))
    norms = [m for m in module.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(id(m.weight) in {id(p) for p in spared["params"]} for m in norms)


def test_lstm_reads_both_ways_with_live_dropout_and_old_one_way_checkpoints_still_load():
    from train.registry import make_method
    torch.manual_seed(0)
    config = {"head": "lstm", "dim": 16, "frames": 12, "pos_len": 12, **HEADS["lstm"].defaults}
    module = build_module(config)
    assert module.lstm.bidirectional and config["layers"] == 1 and config["dropout"] > 0
    torch.nn.init.normal_(module.out.weight)  # a trained-looking output layer (it starts at zero)
    x = torch.randn(3, 12, 16)
    module.train()
    assert not torch.allclose(module(x), module(x))  # dropout acts with a single LSTM layer too
    module.eval()
    assert torch.equal(module(x), module(x))
    # A checkpoint written before the LSTM read both ways has no "bidirectional" key: it loads one-way.
    old = {k: v for k, v in config.items() if k != "bidirectional"}
    one_way = build_module(old)
    assert not one_way.lstm.bidirectional
    method = make_method("lstm", list("abcd"), old, one_way.state_dict(), torch.device("cpu"))
    assert method.logits(x.numpy(), np.eye(4, 16, dtype=np.float32)).shape == (3, 4)
    with pytest.raises(RuntimeError):
        make_method("lstm", list("abcd"), config, one_way.state_dict(), torch.device("cpu"))
    # Retraining such a run as it was (evaluate's few-shot curves) builds the one-way head again.
    from types import SimpleNamespace
    from train.run import HeadOptions, build_config
    data = SimpleNamespace(reader=SimpleNamespace(dim=16), frames=np.arange(12), class_names=list("abcd"),
                           train_classes=np.arange(4))
    assert build_config("lstm", data, HeadOptions(head_config=old))["bidirectional"] is False
    assert build_config("lstm", data, HeadOptions())["bidirectional"] is True


def test_lstm_final_states_see_both_ends_of_the_clip():
    # Why the LSTM reads both ways: a one-way final state has all but forgotten the clip's first frames,
    # which is half of what tells a clip from its time-reversed twin.
    torch.manual_seed(0)
    base = {"head": "lstm", "dim": 16, "frames": 32, "pos_len": 32, **HEADS["lstm"].defaults}
    for both_ways in (False, True):
        module = build_module({**base, "bidirectional": both_ways}).eval()
        h = torch.randn(4, 32, base["width"], requires_grad=True)    # the LSTM's input tokens [B, T, W]
        _, (last, _) = module.lstm(h)
        grad, = torch.autograd.grad(last[-2:].square().sum() if both_ways else last[-1].square().sum(), h)
        first, final = grad[:, :4].norm(), grad[:, -4:].norm()        # the first and the last 4 tokens
        assert final > 0 and (first > 0.2 * final if both_ways else first < 1e-3 * final), (both_ways, first, final)
