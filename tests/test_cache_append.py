"""Schema-3 caches: appends write only what they add, kills lose only what was in flight, compaction,
class-list changes, replaced videos, the stored video index, and schema-1 caches read and migrated."""
import hashlib
import os
import random
import subprocess
import sys
import time

import numpy as np
import pytest

from cache.compact import compact
from cache.pooling import mean_pool
from cache.reader import open_cache
from cache.schema import make_settings
from cache.validate import validate
from cache.writer import CacheWriter
from tests.hostile_media import ROOT, cache_cli, kill_group
from tests.schema1 import write_schema1

N, D = 4, 8
ROW = N * D * 2
SETTINGS = make_settings("some-model", "w" * 64, False, D, N, {"v": 1}, ["a photo of {}."], "/videos")


def frames(i: int) -> np.ndarray:
    """The frames of video i, recognisable from the id alone. [N, D]"""
    return (np.arange(N * D).reshape(N, D) % 7 + i % 1000).astype(np.float16)


def add(path, ids, shard_bytes=1 << 30, classes=("a", "b")):
    w = CacheWriter(os.fspath(path), SETTINGS, shard_bytes=shard_bytes)
    w.set_classes(list(classes), np.eye(len(classes), D))
    for i in ids:
        w.add_video(f"v{i}", frames(i), np.linspace(0, 1, N), classes[i % len(classes)], n_distinct=N, duration=1.0)
    w.close()


def digest(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def check_all(path, ids):
    assert validate(os.fspath(path)) == []
    with open_cache(os.fspath(path)) as r:
        assert sorted(r.ids) == sorted(f"v{i}" for i in ids)
        for start, block in r.iter_emb(500):
            for k, vid in enumerate(r.ids[start:start + len(block)]):
                assert (block[k] == frames(int(vid[1:]))).all(), vid


def committed(folder, name: str, rows: int) -> bytes:
    """The committed frame rows of a shard, as stored."""
    import h5py
    with h5py.File(folder / f"{name}.frames.h5", "r") as f:
        return b"".join(f[k][:rows].tobytes() for k in ("emb", "t", "vidx"))


def test_append_leaves_old_shards_untouched(tmp_path):
    path = tmp_path / "c.h5"
    add(path, range(3000), shard_bytes=1000 * ROW)            # shards of 256, 256, 512, 1000 and 1000 rows
    folder = tmp_path / "c.h5.d"
    with open_cache(os.fspath(path)) as r:
        assert r.shard_rows.tolist() == [256, 256, 512, 1000, 976] and r.shard_capacity[-1] == 1000
    full = {f: (os.stat(folder / f).st_ino, os.stat(folder / f).st_mtime_ns, digest(folder / f))
            for f in os.listdir(folder) if not f.startswith(("lock", "journal", "000005"))}
    assert len(full) == 8                                      # 4 full shards x 2 files
    last = committed(folder, "000005", 976)
    small = os.path.getsize(path)
    add(path, range(3000, 3050), shard_bytes=1000 * ROW)
    for f, (ino, mtime, sha) in full.items():
        st = os.stat(folder / f)
        assert (st.st_ino, st.st_mtime_ns, digest(folder / f)) == (ino, mtime, sha), f
    assert committed(folder, "000005", 976) == last            # the open shard's committed rows stay
    new = sorted(set(os.listdir(folder)) - set(full) - {"lock"})
    assert new == ["000005.frames.h5", "000005.videos.h5", "000006.frames.h5", "000006.videos.h5"]
    with open_cache(os.fspath(path)) as r:
        assert r.shard_rows.tolist() == [256, 256, 512, 1000, 1000, 26]
    assert os.path.getsize(path) < small + 4096                # the manifest: a mapping per shard, not per video
    check_all(path, range(3050))


def test_append_to_the_last_shard_only_grows_it(tmp_path):
    path = tmp_path / "c.h5"
    add(path, range(2000))
    folder = tmp_path / "c.h5.d"
    old = committed(folder, "000004", 976)
    ino = os.stat(folder / "000004.frames.h5").st_ino
    add(path, range(2000, 2010))
    assert os.stat(folder / "000004.frames.h5").st_ino == ino and committed(folder, "000004", 976) == old
    with open_cache(os.fspath(path)) as r:
        assert r.shard_rows.tolist() == [256, 256, 512, 986] and r.shard_capacity.tolist() == [256, 256, 512, 1024]
    check_all(path, range(2010))


def test_video_index_times_and_replaced_rows(tmp_path):
    path = tmp_path / "c.h5"
    add(path, range(30), shard_bytes=10 * ROW)
    w = CacheWriter(os.fspath(path), SETTINGS, shard_bytes=10 * ROW)
    w.add_video("v5", frames(500), np.linspace(0, 0.5, N), "b", n_distinct=N, duration=1.0)
    w.close()
    with open_cache(os.fspath(path)) as r:
        assert r.ids[5] == "v5" and (r.emb([5])[0] == frames(500)).all()          # same row, new frames
        assert np.allclose(r.times([5, 0]), [np.linspace(0, 0.5, N), np.linspace(0, 1, N)])
        index = r.video_index()
        assert index.shape == (30, D) and all(isinstance(mm, np.memmap) for _, mm in index.parts)
        assert np.abs(np.asarray(index, np.float32) - mean_pool(r.emb())).max() < 2e-3
        assert (index[[7, 5]] == np.asarray(index)[[7, 5]]).all()
    assert validate(os.fspath(path)) == []
    assert compact(os.fspath(path), shard_bytes=10 * ROW) == (4, 3)                # the dead row is gone
    with open_cache(os.fspath(path)) as r:
        assert r.shard_rows.tolist() == [10, 10, 10] and (r.emb([5])[0] == frames(500)).all()
    assert validate(os.fspath(path)) == []


def test_class_list_change_is_journalled(tmp_path):
    path = os.fspath(tmp_path / "c.h5")
    add(path, range(4))
    w = CacheWriter(path, SETTINGS)
    w.set_classes(["a", "b", "c"], np.eye(3, D))                   # a new class ...
    w.add_video("v9", frames(9), np.linspace(0, 1, N), "c", n_distinct=N, duration=1.0)
    w.abandon()                                                    # ... then the run dies uncommitted
    w = CacheWriter(path, SETTINGS)                                # resume with yet another list
    assert w.class_names == ["a", "b", "c"] and "v9" in w.done_ids
    w.set_classes(["d"], np.ones((1, D)))
    w.close()
    with open_cache(path) as r:
        assert r.class_names == ["a", "b", "c", "d"]
        assert r.class_names[r.labels[list(r.ids).index("v9")]] == "c"
    assert validate(path) == []


APPENDER = """
import os, sys, numpy as np
sys.path[:0] = [sys.argv[2], os.path.join(sys.argv[2], "tests")]   # conftest imports its helpers by name
from tests.test_cache_append import SETTINGS, frames, N
from cache.writer import CacheWriter
w = CacheWriter(sys.argv[1], SETTINGS, shard_bytes=300 * N * 8 * 2)
w.set_classes(["a", "b"], np.eye(2, 8))
start = len(w.done_ids)
for i in range(start, start + 100000):
    w.add_video(f"v{i}", frames(i), np.linspace(0, 1, N), "a", n_distinct=N, duration=1.0)
    print(i, flush=True)
"""


@pytest.mark.slow
def test_sigkill_during_appends_then_resume(tmp_path):
    path = os.fspath(tmp_path / "k.h5")
    rng = random.Random(11)
    last = -1
    for trial in range(5):
        proc = subprocess.Popen([sys.executable, "-c", APPENDER, path, ROOT], cwd=ROOT, stdout=subprocess.PIPE,
                                text=True, start_new_session=True)
        for line in proc.stdout:                                   # kill at a random moment of writing
            last = int(line)
            if rng.random() < 0.002:
                break
        kill_group(proc)
        if os.path.exists(path):
            assert validate(path) == []                            # committed snapshot is whole
        w = CacheWriter(path, SETTINGS)                            # resume replays the journal
        w.close()
        with open_cache(path) as r:
            # every video the writer had finished is there: at most the one in flight is lost
            assert r.num_videos >= last + 1 and sorted(r.ids) == sorted(f"v{i}" for i in range(r.num_videos))
    check_all(path, range(r.num_videos))
    assert sorted(os.listdir(path + ".d"))[-1] == "lock"           # no journal or temp file left


KILLED_BEFORE_SWAP = """
import os, signal, sys
sys.path[:0] = [sys.argv[2], os.path.join(sys.argv[2], "tests")]
from cache import manifest
from tests.test_cache_append import add
manifest.write = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)   # dies right before the manifest swap
add(sys.argv[1], range(300, 310))
"""


def test_sigkill_between_videos_file_and_manifest_swap(tmp_path):
    """The commit's videos file is in place (with the new rows), the manifest that counts them is not:
    validate finds the old snapshot whole, plain h5py reads it, and the next writer replays the journal."""
    import h5py
    path = os.fspath(tmp_path / "g.h5")
    add(path, range(300))                                          # shards of 256 and 44 rows
    plain = h5py.File(path, "r")                                   # a plain reader of the old snapshot
    proc = subprocess.run([sys.executable, "-c", KILLED_BEFORE_SWAP, path, ROOT], cwd=ROOT)
    assert proc.returncode == -9
    with h5py.File(path + ".d/000002.videos.h5", "r") as f:
        assert len(f["id"]) == 54                                  # rewritten: 10 rows the manifest does not count
    assert validate(path) == []
    assert plain["videos/id"].asstr()[-1] == "v299" and len(plain["videos/id"]) == 300
    plain.close()
    with open_cache(path) as r:
        assert r.num_videos == 300
    CacheWriter(path, SETTINGS).close()                            # replays the 10 journalled videos
    check_all(path, range(310))
    assert sorted(os.listdir(path + ".d")) == ["000001.frames.h5", "000001.videos.h5", "000002.frames.h5",
                                               "000002.videos.h5", "lock"]   # no journal, no temp file


COMPACTOR = "import sys; from cache.compact import compact; compact(sys.argv[1], 2000 * 64, progress=False)"


def _folder_bytes(path: str) -> int:
    """Bytes written in the cache's side folder now (allocated: a new shard's frame file is sparse until
    rows are written): a running compaction's progress, whatever its file names."""
    total = 0
    for entry in os.scandir(path + ".d"):
        try:
            total += entry.stat().st_blocks * 512
        except FileNotFoundError:                                  # removed while we looked
            pass
    return total


@pytest.mark.slow
def test_sigkill_during_compaction(tmp_path):
    path = os.fspath(tmp_path / "c.h5")
    for run in range(30):                                          # 30 runs, 30 small shards
        add(path, range(run * 300, run * 300 + 300), shard_bytes=300 * ROW)
    copy = _folder_bytes(path)                                     # what one copy of the cache weighs
    for trial, share in enumerate((0.05, 0.2, 0.2, 0.2)):
        before = _folder_bytes(path)       # with what a killed compaction left, which the next writer removes first
        proc = subprocess.Popen([sys.executable, "-c", COMPACTOR, path], cwd=ROOT, start_new_session=True)
        deadline = time.monotonic() + 120
        while _folder_bytes(path) <= before + share * copy:        # kill points move on: ~5%, 25%, 45%, 65%
            assert proc.poll() is None, f"kill {trial}: the compaction ended before it wrote {share:.0%} more"
            assert time.monotonic() < deadline, f"kill {trial}: the compaction wrote nothing in 120 s"
            time.sleep(0.001)
        assert proc.poll() is None, f"kill {trial}: the compaction ended before the kill"
        kill_group(proc)
        assert cache_cli("validate", path).returncode == 0
        check_all(path, range(9000))
    proc = cache_cli("compact", path)
    assert proc.returncode == 0, proc.stderr
    with open_cache(path) as r:
        assert r.shard_rows.tolist() == [9000]
    check_all(path, range(9000))
    add(path, range(9000, 9010))                                   # and it still appends
    check_all(path, range(9010))
    assert sorted(os.listdir(path + ".d"))[-1] == "lock" and len(os.listdir(path + ".d")) == 5   # 2 shards


@pytest.fixture
def schema1(tmp_path):
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((40, N, D)).astype(np.float16)
    path = os.fspath(tmp_path / "old.h5")
    write_schema1(path, emb, np.arange(40) % 2, ["a", "b"], rng.standard_normal((2, D)))
    return path, emb


def test_schema1_is_read_indexed_and_migrated(schema1, capfd, monkeypatch):
    from clipvid import progress
    monkeypatch.setattr(progress, "INTERVAL", 0.0)   # the log gets every progress line, however quick the work
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    path, emb = schema1
    assert validate(path) == []
    with open_cache(path) as r:
        assert r.schema_version == 1 and (r.emb([3, 1]) == emb[[3, 1]]).all()
        index = r.video_index()                                    # built once into the side folder
        built = [f for f in os.listdir(path + ".d") if f.startswith("index-")]
        assert len(built) == 1 and np.abs(np.asarray(index, np.float32) - mean_pool(emb)).max() < 2e-3
        stamp = os.stat(os.path.join(path + ".d", built[0])).st_mtime_ns
        r.video_index()
        assert os.stat(os.path.join(path + ".d", built[0])).st_mtime_ns == stamp     # reused
    capfd.readouterr()
    w = CacheWriter(path, SETTINGS)                                # appending migrates
    w.set_classes(["a", "b", "c"], np.eye(3, D))
    w.add_video("new.mp4", frames(1), np.linspace(0, 1, N), "c", n_distinct=N, duration=1.0)
    w.close()
    err = capfd.readouterr().err
    assert f"{path}: upgrading a schema-1 cache to schema 3" in err and err.count("upgrading a") == 1
    assert validate(path) == []
    with open_cache(path) as r:
        assert r.schema_version == 3 and r.num_videos == 41 and (r.emb(np.arange(40)) == emb).all()
        assert r.failures == [("bad.mp4", "moov atom not found")] and r.class_names == ["a", "b", "c"]
        assert sorted(os.listdir(path + ".d")) == ["000001.frames.h5", "000001.videos.h5", "000002.frames.h5",
                                                   "000002.videos.h5", "lock"]   # the index sidecar is gone


def test_fingerprints_of_committed_and_new_rows(tmp_path):
    """A writer reads the committed fingerprints only when asked, and answers for rows it put
    itself, before and after a commit, including a replaced id and non-ASCII ids."""
    path = os.fspath(tmp_path / "c.h5")
    w = CacheWriter(path, SETTINGS)
    w.set_classes(["a"], np.eye(1, D))
    for i, vid in enumerate(["é/1.mp4", "", "plain.mp4"]):
        w.add_video(vid, frames(i), np.linspace(0, 1, N), "a", content=f"old{i}")
    w.close()
    w = CacheWriter(path, SETTINGS)
    assert w.state.committed_content is None   # an append alone never reads them
    w.add_video("plain.mp4", frames(7), np.linspace(0, 1, N), "a", content="new2")
    w.add_video("ß.mp4", frames(8), np.linspace(0, 1, N), "a", content="new3")
    w.commit()
    assert [w.content_of(v) for v in ("é/1.mp4", "", "plain.mp4", "ß.mp4", "absent")] == \
        ["old0", "old1", "new2", "new3", ""]
    w.close()
    with open_cache(path) as r:
        assert list(r.ids) == ["é/1.mp4", "", "plain.mp4", "ß.mp4"]
        assert list(r.content) == ["old0", "old1", "new2", "new3"]
