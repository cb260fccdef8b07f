"""The search index against brute force: same top-k rows, ties to the earlier row, scan and packed alike."""
import numpy as np
import pytest

from evaluate import index as I
from evaluate.index import VideoIndex, exact_scores, recall_at


def _brute(emb, query, k):
    return np.argsort(-exact_scores(emb, query), kind="stable")[:k]


@pytest.mark.parametrize("packed", [False, True])
def test_index_matches_brute_force_on_random_data(packed, monkeypatch):
    monkeypatch.setattr(I, "SCAN_BLOCK", 1000)   # several blocks, so the merge across blocks is exercised
    monkeypatch.setattr(I, "PACK_BLOCK", 1500)
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((5000, 64)).astype(np.float16) * rng.uniform(0.5, 3, (5000, 1)).astype(np.float16)
    index = VideoIndex(emb, packed=packed)
    assert (index._packs is not None) == packed
    for _ in range(20):
        q = rng.standard_normal(64).astype(np.float32)
        assert np.array_equal(index.top(q, 10), _brute(emb, q, 10))
    rows = index.top(q, 5)
    assert np.allclose(index.scores(rows[::-1], q), exact_scores(emb[rows[::-1]], q))
    assert recall_at(index, rng.standard_normal((5, 64)).astype(np.float32), 10) == 1.0


def test_packed_index_uses_int8_kernels():
    assert I.int8_available()  # x86 torch: the packed pass must not silently fall back to float32
    index = VideoIndex(np.eye(4, dtype=np.float32), packed=True)
    assert type(index._packs[0][1]).__name__ != "Tensor"


@pytest.mark.parametrize("packed", [False, True])
def test_index_ties_and_small_collections(packed):
    base = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float16)
    emb = np.concatenate([base, base, base * 2])          # rows 0, 3, 6 have the same direction
    q = base[0].astype(np.float32)
    assert list(VideoIndex(emb, packed=packed).top(q, 3)) == [0, 3, 6]
    assert len(VideoIndex(emb, packed=packed).top(q, 100)) == len(emb)
    assert len(VideoIndex(emb[:0], packed=packed).top(q, 5)) == 0


def test_index_reads_a_memory_map(tmp_path):
    rng = np.random.default_rng(2)
    emb = rng.standard_normal((3000, 32)).astype(np.float16)
    np.save(tmp_path / "e.npy", emb)
    mapped = np.load(tmp_path / "e.npy", mmap_mode="r")
    q = rng.standard_normal(32).astype(np.float32)
    assert np.array_equal(VideoIndex(mapped).top(q, 7), _brute(emb, q, 7))
