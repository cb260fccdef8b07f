"""The search index against brute force: same top-k rows, ties to the earlier row."""
import numpy as np

from evaluate.index import VideoIndex, exact_scores


def _brute(emb, query, k):
    return np.argsort(-exact_scores(emb, query), kind="stable")[:k]


def test_index_matches_brute_force_on_random_data():
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((5000, 64)).astype(np.float16)
    index = VideoIndex(emb)
    for _ in range(20):
        q = rng.standard_normal(64).astype(np.float32)
        assert np.array_equal(index.top(q, 10), _brute(emb, q, 10))


def test_index_ties_and_small_collections():
    base = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float16)
    emb = np.concatenate([base, base, base * 2])          # rows 0, 3, 6 have the same direction
    q = base[0].astype(np.float32)
    top = VideoIndex(emb).top(q, 3)
    assert list(top) == [0, 3, 6]
    assert len(VideoIndex(emb).top(q, 100)) == len(emb)
    assert len(VideoIndex(emb[:0]).top(q, 5)) == 0
