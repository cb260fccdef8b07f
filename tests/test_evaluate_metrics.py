"""Metric code against slow, obvious brute-force versions on random data."""
import numpy as np
import pytest

from evaluate import metrics as M


def brute_rank(row, gt):
    # CLIP4Clip: position of the true item in the list sorted by descending score, ties in its favour
    return 1 + sum(1 for j in range(len(row)) if row[j] > row[gt])


def brute_ap(scores, rel):
    order = sorted(range(len(scores)), key=lambda j: (-scores[j], j))
    hits, precisions = 0, []
    for pos, j in enumerate(order, start=1):
        if rel[j]:
            hits += 1
            precisions.append(hits / pos)
    return sum(precisions) / len(precisions)


def brute_auroc(pos, neg):
    total = 0.0
    for p in pos:
        for n in neg:
            total += 1.0 if p > n else 0.5 if p == n else 0.0
    return total / (len(pos) * len(neg))


def brute_mean_class(correct, truth):
    accs = []
    for c in sorted(set(truth.tolist())):
        members = [i for i in range(len(truth)) if truth[i] == c]
        accs.append(sum(correct[i] for i in members) / len(members))
    return sum(accs) / len(accs)


@pytest.mark.parametrize("seed", range(5))
def test_ranks_and_recall_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    q, v = 40, 60
    # rounded scores make ties frequent, the case where rank definitions differ
    sim = np.round(rng.normal(size=(q, v)), 1)
    gt = rng.integers(0, v, q)
    ranks = M.gt_ranks(sim, gt)
    expect = [brute_rank(sim[i], gt[i]) for i in range(q)]
    assert ranks.tolist() == expect
    summary = M.rank_summary(ranks)
    for k in (1, 5, 10):
        assert summary[f"R@{k}"] == pytest.approx(sum(r <= k for r in expect) / q)
    assert summary["median_rank"] == pytest.approx(float(np.median(expect)))
    assert summary["mean_rank"] == pytest.approx(sum(expect) / q)


def test_rank_summary_perfect_and_worst():
    sim = np.eye(7)
    s = M.rank_summary(M.gt_ranks(sim, np.arange(7)))
    assert s["R@1"] == 1.0 and s["median_rank"] == 1.0 and s["mean_rank"] == 1.0
    worst = M.gt_ranks(-np.eye(7), np.arange(7))
    assert worst.tolist() == [7] * 7


@pytest.mark.parametrize("seed", range(5))
def test_map_and_multi_label_recall_match_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    q, v = 12, 50
    sim = np.round(rng.normal(size=(q, v)), 1)
    rel = rng.random((q, v)) < 0.1
    rel[0] = False  # a query with nothing relevant is left out of mAP and R@K
    out = M.multi_label_retrieval(sim, rel)
    keep = [i for i in range(q) if rel[i].any()]
    aps = [brute_ap(sim[i].tolist(), rel[i].tolist()) for i in keep]
    assert out["queries"] == len(keep)
    assert out["mAP"] == pytest.approx(sum(aps) / len(aps))
    for k in (1, 5, 10):
        hits = 0
        for i in keep:
            order = sorted(range(v), key=lambda j: (-sim[i, j], j))
            hits += any(rel[i, j] for j in order[:k])
        assert out[f"R@{k}"] == pytest.approx(hits / len(keep))


def test_average_precision_known_values():
    assert M.average_precision(np.array([3, 2, 1.0]), np.array([1, 0, 1])) == pytest.approx((1 + 2 / 3) / 2)
    assert M.average_precision(np.array([1.0, 2, 3]), np.array([1, 0, 0])) == pytest.approx(1 / 3)
    assert np.isnan(M.average_precision(np.array([1.0, 2]), np.array([0, 0])))


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_brute_force_and_sklearn(seed):
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(200 + seed)
    pos = np.round(rng.normal(0.5, 1, 30), 1)
    neg = np.round(rng.normal(0, 1, 45), 1)
    got = M.auroc(pos, neg)
    assert got == pytest.approx(brute_auroc(pos, neg))
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    assert got == pytest.approx(roc_auc_score(y, np.r_[pos, neg]))


def test_auroc_extremes():
    assert M.auroc(np.array([2.0, 3]), np.array([0.0, 1])) == 1.0
    assert M.auroc(np.array([0.0]), np.array([1.0])) == 0.0
    assert M.auroc(np.array([1.0]), np.array([1.0])) == 0.5


@pytest.mark.parametrize("seed", range(4))
def test_topk_and_accuracies_match_brute_force(seed):
    rng = np.random.default_rng(300 + seed)
    v, c = 80, 9
    scores = rng.integers(0, 4, size=(v, c)).astype(float)  # integer votes: many ties
    truth = rng.integers(0, c, v)
    for k in (1, 3, 5):
        got = M.topk_correct(scores, truth, k)
        for i in range(v):
            order = sorted(range(c), key=lambda j: (-scores[i, j], j))
            assert got[i] == (truth[i] in order[:k])
    top1 = M.topk_correct(scores, truth, 1)
    assert np.array_equal(top1, scores.argmax(1) == truth)  # agrees with the argmax prediction
    assert M.mean_class_accuracy(top1, truth) == pytest.approx(brute_mean_class(top1, truth))
    cm = M.confusion_matrix(truth, scores.argmax(1), c)
    for a in range(c):
        for b in range(c):
            assert cm[a, b] == sum(1 for i in range(v) if truth[i] == a and scores[i].argmax() == b)
    per = M.per_class_accuracy(top1, truth, c + 1)
    assert np.isnan(per[c])
    assert per[truth[0]] == pytest.approx(np.mean(top1[truth == truth[0]]))


@pytest.mark.parametrize("seed", range(3))
def test_bootstrap_matches_brute_force(seed):
    rng = np.random.default_rng(400 + seed)
    n, b = 37, 200
    correct = rng.random(n) < 0.6
    truth = rng.integers(0, 5, n)
    idx = M.bootstrap_indices(n, b, seed)
    assert idx.shape == (b, n) and idx.min() >= 0 and idx.max() < n
    means, class_means = [], []
    for row in idx:
        means.append(sum(correct[i] for i in row) / n)
        class_means.append(brute_mean_class(correct[row], truth[row]))
    lo, hi = np.quantile(means, [0.025, 0.975])
    ci = M.bootstrap_mean_ci(correct, b, seed)
    assert ci["value"] == pytest.approx(correct.mean())
    assert (ci["low"], ci["high"]) == pytest.approx((lo, hi))
    cci = M.bootstrap_mean_class_ci(correct, truth, b, seed)
    lo, hi = np.quantile(class_means, [0.025, 0.975])
    assert cci["value"] == pytest.approx(brute_mean_class(correct, truth))
    assert (cci["low"], cci["high"]) == pytest.approx((lo, hi))
    assert cci["low"] <= cci["value"] <= cci["high"]


def test_bootstrap_interval_is_reproducible_and_covers():
    rng = np.random.default_rng(7)
    hits = rng.random(500) < 0.3
    a = M.bootstrap_mean_ci(hits, 1000, 0)
    assert a == M.bootstrap_mean_ci(hits, 1000, 0)
    assert a["low"] < 0.3 < a["high"] and a["high"] - a["low"] < 0.12
    const = M.bootstrap_mean_ci(np.ones(20), 100, 0)
    assert const["low"] == const["high"] == 1.0


def test_harmonic_mean_and_pooling():
    assert M.harmonic_mean(0.5, 0.5) == pytest.approx(0.5)
    assert M.harmonic_mean(1.0, 0.0) == 0.0
    assert M.harmonic_mean(0.8, 0.4) == pytest.approx(2 * 0.8 * 0.4 / 1.2)
    emb = np.random.default_rng(0).normal(size=(3, 4, 6)).astype(np.float16)
    pooled = M.mean_pool(emb)
    assert pooled.shape == (3, 6)
    assert np.allclose(np.linalg.norm(pooled, axis=1), 1, atol=1e-5)
    frames = emb.astype(np.float32) / np.linalg.norm(emb.astype(np.float32), axis=2, keepdims=True)
    ref = frames.mean(1)
    assert np.allclose(pooled, ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=1e-5)
