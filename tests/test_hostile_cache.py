"""Damaged, foreign and newer caches: one line naming the file and the problem; readers see whole snapshots."""
import os
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from clipvid.errors import EXIT_DATA, CacheError
from cache.reader import open_cache
from cache.schema import make_settings
from cache.validate import validate
from cache.writer import CacheWriter
from hostile_media import ROOT, cache_cli, clip, extract, one_line_error

N, D = 8, 16


def make_cache(path, videos: int = 6, weights: str = "w" * 64):
    settings = make_settings("some-model", weights, False, D, N, {"v": 1}, ["a photo of {}."])
    rng = np.random.default_rng(0)
    w = CacheWriter(os.fspath(path), settings)
    w.set_classes(["jump", "run"], rng.standard_normal((2, D)))
    for i in range(videos):
        w.add_video(f"v{i}.mp4", rng.standard_normal((N, D)), np.linspace(0, 1, N), ["jump", "run"][i % 2],
                    n_distinct=N, duration=1.0, fps=10)
    w.add_failure("bad.mp4", "moov atom not found")
    w.close()
    return os.fspath(path)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return make_cache(tmp_path_factory.mktemp("cache") / "good.h5")


def _damaged(good, tmp_path, name, edit):
    path = tmp_path / name / "good.h5"             # a copy keeps its name: the mapping names good.h5.d
    os.makedirs(path.parent)
    shutil.copy(good, path)
    shutil.copytree(good + ".d", f"{path}.d")       # a cache is the manifest and its shard folder
    edit(path)
    return path


def _truncate(path):
    os.truncate(path, os.path.getsize(path) // 3)


def _newer(path):
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 99


def _no_rows(path):
    with h5py.File(path, "r+") as f:
        del f["shards/runs"]


def _not_ours(path):
    with h5py.File(path, "w") as f:
        f["x"] = [1, 2, 3]


CASES = {"truncated.h5": (_truncate, "not a readable HDF5 file"),
         "newer.h5": (_newer, "schema version 99 is newer"),
         "no_rows.h5": (_no_rows, "missing shards/runs"),
         "no_shard.h5": (lambda p: os.unlink(f"{p}.d/000001.frames.h5"), "shard file"),
         "foreign.h5": (_not_ours, "not a clipvid cache"),
         "text.h5": (lambda p: open(p, "w").write("hello"), "not a readable HDF5 file"),
         "empty.h5": (lambda p: open(p, "w").close(), "not a readable HDF5 file")}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("command", ["info", "validate"])
def test_hostile_cache_refused_in_one_line(good, tmp_path, name, command):
    edit, message = CASES[name]
    path = _damaged(good, tmp_path, name, edit)
    proc = cache_cli(command, path)
    assert proc.returncode == EXIT_DATA, proc.stdout + proc.stderr
    line = one_line_error(proc)
    assert line.startswith(f"error: {path}: ") and message in line, line
    assert proc.stderr.strip() == line


def _contents(path):
    """Everything a reader of the cache sees: settings, videos, frames, times, classes, failures."""
    with open_cache(os.fspath(path)) as r:
        return (r.settings, {k: v.tolist() for k, v in r.columns.items()}, r.emb().tobytes(), r.times().tobytes(),
                r.class_names, r.text_emb.tobytes(), r.failures)


def _scribble(path, at: int, n: int) -> None:
    """Invert n bytes at offset `at`: they surely differ afterwards."""
    with open(path, "r+b") as f:
        f.seek(at)
        old = f.read(n)
        f.seek(at)
        f.write(bytes(b ^ 0xFF for b in old))


def _refused(proc, path) -> None:
    """validate noticed: exit 1 with each problem on a line naming the cache, or EXIT_DATA with one error line."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (1, EXIT_DATA), f"validate exited {proc.returncode}: {proc.stdout}{proc.stderr}"
    if proc.returncode == EXIT_DATA:
        assert one_line_error(proc).startswith(f"error: {path}: "), proc.stderr
    else:
        lines = proc.stderr.strip().splitlines()
        assert lines and all(line.startswith(f"{path}: ") for line in lines), proc.stderr


@pytest.mark.slow
def test_hostile_cache_random_corruption_never_a_traceback(good, tmp_path):
    """64 bytes scribbled anywhere in the manifest: validate refuses in one line, or the cache reads exactly
    as it did (the bytes were unused)."""
    rng = np.random.default_rng(7)
    size = os.path.getsize(good)
    whole = _contents(good)
    for trial in range(12):
        at = int(rng.integers(0, size - 64))
        path = _damaged(good, tmp_path, f"scribbled{trial}.h5", lambda p: _scribble(p, at, 64))
        proc = cache_cli("validate", path)
        if proc.returncode == 0:
            assert _contents(path) == whole, f"bytes {at}-{at + 64} changed what a reader sees, and validate passed"
        else:
            _refused(proc, path)


@pytest.mark.slow
def test_hostile_cache_every_scribbled_frame_file_is_noticed(good, tmp_path):
    """Every committed frame row and every committed videos value is checksummed: a scribble in the
    committed rows of any frame dataset fails validate; one anywhere else in a frame file (its HDF5
    header, its unused capacity) or anywhere in a videos file fails validate or changes nothing a reader sees."""
    from cache.layout import frame_offsets, row_bytes
    rng = np.random.default_rng(11)
    whole = _contents(good)
    files = sorted(f for f in os.listdir(good + ".d") if f.endswith(".h5"))
    assert files == ["000001.frames.h5", "000001.videos.h5"]
    places = []   # (file, offset, must be noticed)
    _, offsets = frame_offsets(f"{good}.d/000001.frames.h5", N, D)
    for kind, off in offsets.items():                              # 6 committed rows of each
        places.append(("000001.frames.h5", off + int(rng.integers(0, 6 * row_bytes(kind, N, D) - 8)), True))
    for name in files:
        size = os.path.getsize(os.path.join(good + ".d", name))
        places += [(name, int(rng.integers(0, size - 8)), False) for _ in range(3)]
    for k, (name, at, noticed) in enumerate(places):
        path = _damaged(good, tmp_path, f"scribble{k}.h5", lambda p: _scribble(f"{p}.d/{name}", at, 8))
        proc = cache_cli("validate", path)
        if noticed or proc.returncode:
            _refused(proc, path)
        else:
            assert _contents(path) == whole, f"{name} bytes {at}-{at + 8} changed what a reader sees, and validate passed"
    for column, value in (("label", 1), ("duration", 9.5), ("id", "a/other.mp4"), ("caption", "x")):
        def edit(p):                                                # one committed value changed in place
            with h5py.File(f"{p}.d/000001.videos.h5", "r+") as f:
                f[column][2] = value
        path = _damaged(good, tmp_path, f"value-{column}.h5", edit)
        _refused(cache_cli("validate", path), path)


def test_hostile_cache_damaged_output_refused_by_extract(good, tmp_path):
    os.makedirs(tmp_path / "src" / "a")
    clip(tmp_path / "src" / "a" / "v.mp4")
    truncated = _damaged(good, tmp_path, "t.h5", _truncate)
    proc = extract(tmp_path / "src", truncated)
    assert proc.returncode == EXIT_DATA and "not a readable HDF5 file" in one_line_error(proc)
    proc = extract(tmp_path / "src", good)            # another model's cache: never mixed
    assert proc.returncode == EXIT_DATA
    line = one_line_error(proc)
    assert "refusing to append" in line and "'some-model'" in line and "'random:tiny'" in line
    assert validate(good) == [] and open_cache(good).num_videos == 6


WRITER = """
import sys, numpy as np
from cache.schema import make_settings
from cache.writer import CacheWriter
s = make_settings("m", "w" * 64, False, 16, 8, {"v": 1}, [])
w = CacheWriter(sys.argv[1], s)
w.set_classes(["a"], np.ones((1, 16)))
for i in range(400):
    w.add_video(f"v{i}", np.full((8, 16), i % 7), np.linspace(0, 1, 8), "a", n_distinct=8, duration=1.0)
    if i % 5 == 4:
        w.commit()
w.close()
"""


@pytest.mark.slow
def test_hostile_reader_while_writer_appends(tmp_path):
    path = os.fspath(tmp_path / "live.h5")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, path], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))
    sizes, deadline = set(), time.time() + 120
    while writer.poll() is None and time.time() < deadline:
        try:
            with open_cache(path) as r:
                emb = r.emb()
                assert emb.shape == (r.num_videos, 8, 16) and len(set(r.ids)) == r.num_videos
                assert r.ids.tolist() == [f"v{i}" for i in range(r.num_videos)]   # a prefix, in order
                assert all((emb[i] == i % 7).all() for i in range(r.num_videos))
                sizes.add(r.num_videos)
        except CacheError as exc:
            assert "no such cache file" in str(exc), exc    # only before the first commit
    assert writer.wait(timeout=60) == 0
    assert len(sizes) >= 3, sizes                           # saw the cache grow, snapshot by snapshot
    assert validate(path) == [] and open_cache(path).num_videos == 400
