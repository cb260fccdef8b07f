"""Result files: only a benchmark's own writer makes them, stamped, with its module's declared keys."""
import glob
import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bench import common
from bench.__main__ import ALL

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMITTED = sorted(glob.glob(os.path.join(ROOT, "bench", "results", "*.json")))


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPVID_BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("CLIPVID_BENCH_LOCK", str(tmp_path / "bench.lock"))
    return tmp_path / "results"


def test_every_benchmark_declares_its_keys_and_headlines():
    for name in ALL:
        mod = importlib.import_module(f"bench.{name}")
        assert isinstance(mod.RESULT_KEYS, frozenset) and mod.RESULT_KEYS, name
        assert not {"stamp", "headlines"} & mod.RESULT_KEYS, name
        assert mod.HEADLINES and all(isinstance(h, str) for h in mod.HEADLINES), name


def test_committed_results_are_stamped_with_only_declared_keys():
    """Every bench/results/*.json (none until the next rerun: the older ones are in unstamped/)."""
    for path in COMMITTED:
        name = os.path.splitext(os.path.basename(path))[0]
        assert name in ALL, f"{path}: no benchmark of that name writes it"
        mod = importlib.import_module(f"bench.{name}")
        with open(path) as f:
            doc = json.load(f)
        assert common.check_result(doc, mod.RESULT_KEYS, mod.HEADLINES) == [], path
        assert doc["stamp"]["machine"]["cpu"] and doc["stamp"]["machine"]["cores"], path


def test_unstamped_results_are_kept_apart():
    """The figures measured before the stamped writer are not in bench/results/ itself."""
    for path in COMMITTED:
        with open(path) as f:
            assert "stamp" in json.load(f), path
    assert glob.glob(os.path.join(ROOT, "bench", "results", "unstamped", "*.json"))


def test_writer_stamps_and_the_check_accepts_it(results):
    run = common.Run("memory", {"rss_growth", "runs"})
    assert run.headline("rss_growth", [1.0, 3.0, 2.0]) == 2.0
    path = run.write({"rss_growth": 2.0, "runs": {"100": np.float64(1.5)}}, state="warm", repeats=3)
    assert os.path.dirname(path) == str(results)
    doc = json.load(open(path))
    stamp = doc["stamp"]
    assert stamp["commit"] == common.commit() and stamp["commit"] != "unknown"
    assert stamp["state"] == "warm" and stamp["repeats"] == 3
    assert len(stamp["load_before"]) == 3 and len(stamp["load_after"]) == 3
    assert stamp["machine"]["cores"] == os.cpu_count()
    assert doc["headlines"]["rss_growth"] == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert common.check_result(doc, {"rss_growth", "runs"}, ("rss_growth",)) == []


def test_writer_refuses_undeclared_keys(results):
    run = common.Run("memory", {"rss_growth"})
    with pytest.raises(ValueError, match="ooc_note"):
        run.write({"rss_growth": 1.0, "ooc_note": "typed in"}, state="warm", repeats=1)
    run.close()
    assert not os.path.exists(results / "memory.json")


def test_check_catches_hand_edits(results):
    run = common.Run("memory", {"rss_growth"})
    run.headline("rss_growth", [0.8])
    doc = json.load(open(run.write({"rss_growth": 0.8}, state="warm", repeats=1)))
    edited = dict(doc, rss_growth=1.0)
    assert "figures differ from what the bench wrote (digest)" in common.check_result(edited, {"rss_growth"},
                                                                                      ("rss_growth",))
    added = dict(doc, rss_note="typed in")
    assert "undeclared key 'rss_note'" in common.check_result(added, {"rss_growth"}, ("rss_growth",))
    unstamped = {k: v for k, v in doc.items() if k != "stamp"}
    assert common.check_result(unstamped, {"rss_growth"}, ("rss_growth",)) == ["no stamp"]
    assert "undeclared headline 'rss_growth'" in common.check_result(doc, {"rss_growth"}, ())


def test_spread_is_median_min_max():
    assert common.spread([4.0]) == {"median": 4.0, "min": 4.0, "max": 4.0, "n": 1}
    assert common.spread([5, 1, 3, 2]) == {"median": 2.5, "min": 1.0, "max": 5.0, "n": 4}
    with pytest.raises(ValueError):
        common.spread([])


def test_bench_lock_is_one_at_a_time(results, tmp_path):
    """While this process holds the lock, another process cannot take it; after, it can."""
    probe = ("import fcntl, sys; f = open(sys.argv[1], 'a')\n"
             "try:\n    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB); print('free')\n"
             "except BlockingIOError:\n    print('held')\n")
    lock = os.environ["CLIPVID_BENCH_LOCK"]
    ask = lambda: subprocess.run([sys.executable, "-c", probe, lock], capture_output=True, text=True).stdout.strip()
    with common.bench_lock():
        with common.bench_lock():            # re-entrant: `python -m bench` holds it around each module's Run
            assert ask() == "held"
        assert ask() == "held"
    assert ask() == "free"


def test_evict_pages_covers_the_cache_and_its_side_folder(tmp_path):
    path = tmp_path / "c.h5"
    path.write_bytes(b"x" * 8192)
    (tmp_path / "c.h5.d" / "sub").mkdir(parents=True)
    (tmp_path / "c.h5.d" / "a.emb").write_bytes(b"y" * 8192)
    (tmp_path / "c.h5.d" / "sub" / "b.num").write_bytes(b"z" * 10)
    assert common.evict_pages(str(path)) == 3
    assert path.read_bytes() == b"x" * 8192          # eviction drops cached pages, never data


def test_decode_headlines_are_the_ratios_of_each_round():
    from bench.decode import round_ratios
    rounds = {"ours": [2.0, 3.0], "bare": [4.0, 3.0], "opencv": [1.0, 6.0]}
    classes = {"short": {"cpu_s_rounds": rounds, "best_peer": "opencv"},
               "long_sparse": {"cpu_s_rounds": {"ours": [1.0, 1.0], "bare": [2.0, 4.0]}, "best_peer": None},
               "long_dense": {"cpu_s_rounds": {"ours": [3.0, 3.0], "bare": [2.0, 4.0]}, "best_peer": None}}
    got = round_ratios(classes)
    assert got["short_ratio"] == [0.5, 1.0] and got["peer_ratio_short"] == [2.0, 0.5]
    assert got["long_ratio"] == [4.0 / 4.0, 4.0 / 8.0] and "peer_ratio_long_sparse" not in got


def test_floor_is_the_read_or_the_vote_products_whichever_is_longer():
    from bench.train_scale import CLASSES, DIM, FRAMES, floor_seconds
    flops = 2 * 1000 * FRAMES * DIM * CLASSES                    # the vote's products for 1,000 videos
    assert floor_seconds(1000, 2.0, flops / 1e9) == 2.0           # 1 s of products: the read is longer
    assert floor_seconds(1000, 0.5, flops / 1e9) == pytest.approx(1.0)
