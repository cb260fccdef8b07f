"""Memory that must not grow with the collection: spill files read in blocks, chunked top-k, a chunked probe."""
import numpy as np
import pytest

from train import linear as L
from train import metrics as TM
from train.data import RowSelection, SpillRows


def _peak_growth_mib(fn) -> float:
    """MiB the process's peak resident set (VmHWM: anonymous and file pages) rose above its size before fn."""
    def status(key: str) -> int:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith(key + ":"))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                                    # resets VmHWM to the current resident set
    before = status("VmRSS")
    fn()
    return (status("VmHWM") - before) / 1024


def test_a_spill_file_is_scanned_without_its_pages_counting_in_the_process(tmp_path):
    rows, width, step = 4096, 4096, 128                   # 64 MiB of float32, read 2 MiB at a time
    spill = SpillRows((rows, width), np.float32, path=str(tmp_path / "big.npy"))
    for s in range(0, rows, step):
        spill.write(s, np.full((step, width), s, np.float32))
    buf = np.empty((step, width), np.float32)
    seen = []
    grown = _peak_growth_mib(lambda: seen.extend(float(spill.read(s, s + step, buf)[-1, -1])
                                                 for s in range(0, rows, step)))
    assert seen == [float(s) for s in range(0, rows, step)]
    assert grown < 16, grown
    # The same scan through a memory map (what evaluate did with its test frames): every page it
    # touched stays in the process's resident set, so the measure above can fail.
    mapped = np.load(str(tmp_path / "big.npy"), mmap_mode="r")
    assert np.array_equal(mapped[::step, -1], np.arange(0, rows, step, dtype=np.float32))
    grown_mapped = _peak_growth_mib(lambda: [float(mapped[s:s + step].sum()) for s in range(0, rows, step)])
    assert grown_mapped > 48, grown_mapped


def test_spill_rows_read_back_what_was_written_by_slice_and_by_index():
    x = np.random.default_rng(0).standard_normal((300, 5, 7)).astype(np.float16)
    spill = SpillRows(x.shape, np.float16, "t")
    spill.write(0, x[:120])
    spill.write(120, x[120:])
    assert np.array_equal(spill[:], x) and np.array_equal(spill[40:77], x[40:77])
    pick = np.array([299, 3, 3, 150, 4, 0])
    assert np.array_equal(spill[pick], x[pick]) and np.array_equal(np.asarray(spill), x)
    assert np.array_equal(RowSelection(RowSelection(spill, pick), [1, 0])[0:2], x[[3, 299]])
    empty = SpillRows((0, 4), np.float32, "t")
    assert empty[:].shape == (0, 4) and len(empty) == 0


def test_top_k_compared_in_chunks_gives_the_whole_table_answer(monkeypatch):
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, (257, 9)).astype(np.float32)  # many ties: the lower column goes first
    truth = rng.integers(0, 9, 257)
    brute = np.array([sum(s[j] > s[t] or (s[j] == s[t] and j < t) for j in range(9)) for s, t in zip(scores, truth)])
    monkeypatch.setattr(TM, "CHUNK", 20)                    # 2 rows per chunk
    assert np.array_equal(TM.truth_ahead(scores, truth), brute)
    for k in (1, 5):
        assert np.array_equal(TM.topk_correct(scores, truth, k), brute < k)
    names = [f"c{i}" for i in range(9)]
    assert TM.summarize(scores, truth, names) == TM.summarize_ranks(brute, scores.argmax(1), truth, names)


def _probe_data(n: int = 3000, classes: int = 12, dim: int = 16):
    rng = np.random.default_rng(2)
    centres = rng.standard_normal((classes, dim)) * 2
    y = rng.integers(0, classes, n)
    x = (centres[y] + rng.standard_normal((n, dim)) * 1.5).astype(np.float32)
    return x, y


def test_the_probe_reads_its_features_from_a_spill_file_with_the_same_bits(tmp_path):
    x, y = _probe_data()
    tr, va = np.arange(0, 2500), np.arange(2500, 3000)
    spill = SpillRows(x.shape, np.float32, "probe")
    spill.write(0, x)
    plain = L.fit_linear(x[tr], y[tr], x[va], y[va], 12, 0)
    spilled = L.fit_linear(RowSelection(spill, tr), y[tr], RowSelection(spill, va), y[va], 12, 0)
    assert np.array_equal(plain[0], spilled[0]) and np.array_equal(plain[1], spilled[1])
    assert plain[2] == spilled[2]


def test_the_probe_loss_summed_in_chunks_reaches_the_full_batch_optimum(monkeypatch):
    x, y = _probe_data()
    tr, va = np.arange(0, 2500), np.arange(2500, 3000)
    whole = L.fit_linear(x[tr], y[tr], x[va], y[va], 12, 0, grid=(1.0,))
    monkeypatch.setattr(L, "CHUNK", 700)                     # standardisation and validation in chunks too
    chunked = L.fit_linear(x[tr], y[tr], x[va], y[va], 12, 0, grid=(1.0,), chunk=700)
    assert np.allclose(whole[0], chunked[0], atol=2e-3) and np.allclose(whole[1], chunked[1], atol=2e-3)
    assert chunked[2]["search"][0]["val_top1"] == pytest.approx(whole[2]["search"][0]["val_top1"], abs=0.004)
    assert chunked[2]["search"][0]["val_loss"] == pytest.approx(whole[2]["search"][0]["val_loss"], rel=1e-4)
