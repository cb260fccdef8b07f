"""The cache is plain HDF5: the documented h5py lines read it without clipvid after moves, a plain
reader keeps its snapshot, validate checks the virtual mapping, and older layouts upgrade to identical arrays."""
import os
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from cache.reader import open_cache
from cache.validate import validate
from cache.writer import CacheWriter
from tests.hostile_media import ROOT, cache_cli
from tests.schema1 import write_schema1
from tests.schema2 import write_schema2
from tests.test_cache_append import D, N, SETTINGS, ROW, add, frames

SITE = os.path.dirname(os.path.dirname(h5py.__file__))   # h5py and numpy, without the project's .pth hooks


def doc_lines() -> list:
    """The python block of the "Cache format" section, as the documentation shows it."""
    for name in ("docs/cache-format.md", "README.md"):
        path = os.path.join(ROOT, name)
        if os.path.exists(path):
            text = open(path, encoding="utf-8").read()
            head = re.search(r"^#+ Cache format", text, re.M)
            if head:
                return re.search(r"```python\n(.*?)```", text[head.end():], re.S).group(1).rstrip("\n").split("\n")
    raise AssertionError("no Cache format section")


def plain_read(lines: list, cache: str, cwd: str, out: str) -> subprocess.CompletedProcess:
    """Run `lines` (the cache's name put in) in a Python that cannot import clipvid, from `cwd`."""
    code = "\n".join(["import sys", f"sys.path.append({SITE!r})", "import importlib.util",
                      "assert not any(importlib.util.find_spec(m) for m in ('cache', 'clipvid', 'train'))",
                      *[line.replace('"cache.h5"', repr(cache)) for line in lines],
                      "import numpy",
                      f"numpy.savez({out!r}, emb=emb[:], t=t[:], ids=ids.astype(str), labels=labels, "
                      "classes=classes.astype(str))"])
    return subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=cwd, capture_output=True, text=True,
                          env={"PATH": os.environ.get("PATH", "")})


def test_documented_plain_h5py_read_after_two_appends_and_a_move(tmp_path):
    lines = doc_lines()
    assert len(lines) == 5 and any("h5py.File(\"cache.h5\"" in line for line in lines)
    first, other, third = tmp_path / "made", tmp_path / "moved here", tmp_path / "elsewhere"
    for d in (first, other, third):
        os.makedirs(d)
    add(first / "cache.h5", range(300), shard_bytes=200 * ROW)       # two shards
    add(first / "cache.h5", range(300, 420), shard_bytes=200 * ROW)  # appended twice: three
    shutil.move(first / "cache.h5", other / "cache.h5")
    shutil.move(first / "cache.h5.d", other / "cache.h5.d")
    # A cache of the same name in the reading folder must not be read instead.
    add(third / "cache.h5", range(5))
    proc = plain_read(lines, os.fspath(other / "cache.h5"), os.fspath(third), os.fspath(tmp_path / "out.npz"))
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "out.npz")
    with open_cache(os.fspath(other / "cache.h5")) as r:
        assert len(r.shard_names) == 3 and r.num_videos == 420
        assert got["ids"].tolist() == r.ids.tolist() == [f"v{i}" for i in range(420)]
        assert (got["emb"] == np.stack([frames(i) for i in range(420)])).all()
        assert got["emb"].dtype == np.float16 and got["t"].dtype == np.float32 and got["t"].shape == (420, N)
        assert (got["t"] == r.times()).all() and (got["labels"] == r.labels).all()
        assert got["classes"].tolist() == ["a", "b"] and got["labels"].tolist()[:3] == [0, 1, 0]


def test_plain_reader_keeps_its_snapshot_and_validate_checks_the_mapping(tmp_path):
    path = os.fspath(tmp_path / "c.h5")
    add(path, range(100))
    early = h5py.File(path, "r")                   # opened before the append, read after it
    add(path, range(100, 150))
    assert early["videos/id"].shape == (100,) and early["videos/id"].asstr()[-1] == "v99"
    assert (early["frames/emb"][99] == frames(99)).all() and early["videos/label"][98] == 0
    early.close()
    assert validate(path) == []
    with h5py.File(path, "r") as f:                # what a plain reader of the new snapshot sees
        assert f["frames/emb"].is_virtual and f["frames/emb"].shape == (150, N, D)
        assert sorted(f["videos"]) == ["caption", "content", "decoder", "duration", "fps", "id", "label", "n_distinct",
                                       "split"]
    # A manifest whose mapping reaches past the committed rows (or names another dataset) is caught.
    with h5py.File(path, "r+") as f:
        src = f["frames/emb"].virtual_sources()[0]
        layout = h5py.VirtualLayout((150, N, D), np.float16)
        layout[:] = h5py.VirtualSource(src.file_name, "emb", shape=(256, N, D))[1:151]
        del f["frames/emb"]
        f.create_virtual_dataset("frames/emb", layout)
    problems = validate(path)
    assert problems and all("frames/emb" in p for p in problems), problems


def _plain(path: str) -> dict:
    with h5py.File(path, "r") as f:
        out = {k: f[k][()] for k in ("frames/emb", "frames/t", "videos/label", "videos/n_distinct",
                                     "videos/duration", "videos/fps", "classes/text_emb")}
        out.update({k: f[k].asstr()[()].tolist() for k in ("videos/id", "videos/split", "videos/caption", "videos/decoder",
                                                             "classes/name", "failures/id", "failures/reason") if k in f})
    return out


@pytest.mark.parametrize("schema", [1, 2])
def test_older_caches_upgrade_once_to_identical_arrays(tmp_path, schema, capfd):
    rng = np.random.default_rng(schema)
    emb = rng.standard_normal((40, N, D)).astype(np.float16)
    path = os.fspath(tmp_path / "old.h5")
    labels = np.arange(40) % 2
    text = rng.standard_normal((2, D))
    if schema == 1:
        write_schema1(path, emb, labels, ["a", "b"], text)
        before = _plain(path)                                       # every array was in the file itself
    else:
        row_map = write_schema2(path, emb, labels, ["a", "b"], text)
        with open_cache(path) as r:                                 # read in place, in video order
            assert r.schema_version == 2 and r.ids.tolist() == [f"v{i}.mp4" for i in range(40)]
            before = {"frames/emb": r.emb(), "frames/t": r.times(), "videos/label": r.labels,
                      "videos/n_distinct": r.n_distinct, "videos/duration": r.duration, "videos/fps": r.fps,
                      "classes/text_emb": r.text_emb, "videos/id": r.ids.tolist(), "videos/split": r.splits.tolist(),
                      "videos/caption": r.captions.tolist(), "classes/name": r.class_names,
                      "failures/id": ["bad.mp4"], "failures/reason": ["moov atom not found"],
                      "videos/decoder": r.decoder.tolist()}
        assert (before["frames/emb"] == emb).all() and before["videos/caption"][7] == "caption 7"
        second = np.argsort(row_map)[20:]                          # the videos the second shard holds
        assert sorted(i for i, d in enumerate(before["videos/decoder"]) if d) == sorted(second.tolist())
    assert validate(path) == []
    if schema == 1:
        proc = cache_cli("migrate", path)                           # the command
        assert proc.returncode == 0 and proc.stdout.strip() == f"{path}: schema 1 -> 3", proc.stdout + proc.stderr
    else:
        w = CacheWriter(path, SETTINGS)                             # the first append upgrades first
        w.add_video("v40.mp4", frames(40), np.linspace(0, 1, N), None, n_distinct=N, duration=1.0)
        w.close()
        err = capfd.readouterr().err
        assert err.count(f"{path}: upgrading a schema-2 cache to schema 3") == 1, err
    after = _plain(path)
    for key, old in before.items():
        new = after[key][:40] if key.startswith(("frames/", "videos/")) else after[key]
        assert np.array_equal(np.asarray(new), np.asarray(old)), key
    assert validate(path) == [] and cache_cli("migrate", path).stdout.strip() == f"{path}: already schema 3"
    left = sorted(os.listdir(path + ".d"))
    assert all(n.endswith((".frames.h5", ".videos.h5")) or n == "lock" for n in left), left   # old files gone


def test_a_renamed_cache_is_found_by_validate_and_mapped_again(tmp_path):
    add(tmp_path / "a.h5", range(20))
    os.rename(tmp_path / "a.h5", tmp_path / "b.h5")
    os.rename(tmp_path / "a.h5.d", tmp_path / "b.h5.d")
    path = os.fspath(tmp_path / "b.h5")
    with open_cache(path) as r:                                   # clipvid's own reads do not depend on it
        assert (r.emb([3])[0] == frames(3)).all()
    problems = validate(path)
    assert len(problems) == 1 and "name the folder a.h5.d/, not b.h5.d/" in problems[0] and "migrate" in problems[0]
    proc = cache_cli("migrate", path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"{path}: mapped to b.h5.d/", proc.stdout + proc.stderr
    assert validate(path) == []
    with h5py.File(path, "r") as f:
        assert (f["frames/emb"][3] == frames(3)).all() and f["videos/id"].asstr()[3] == "v3"


def test_a_new_per_video_column_is_one_line_in_the_schema(tmp_path, monkeypatch):
    from cache import schema as S
    path = os.fspath(tmp_path / "c.h5")
    add(path, range(300))                            # a full shard and an open one, written before the columns
    monkeypatch.setitem(S.VIDEO_COLUMNS, "codec", ("str", ""))    # the one line (and one more, numeric)
    monkeypatch.setitem(S.VIDEO_COLUMNS, "level", ("int32", -1))
    w = CacheWriter(path, SETTINGS)
    w.add_video("v300", frames(300), np.linspace(0, 1, N), "a", n_distinct=N, duration=1.0, codec="h264", level=3)
    with pytest.raises(ValueError, match="no per-video column 'colour'"):
        w.add_video("v301", frames(301), np.linspace(0, 1, N), "a", colour="red")
    w.close()
    with open_cache(path) as r:
        assert len(r.shard_names) == 2 and r.columns["codec"].tolist() == [""] * 300 + ["h264"]
        assert r.columns["level"].tolist() == [-1] * 300 + [3]
    with h5py.File(path, "r") as f:                  # the full shard's file has no such datasets: defaults
        assert f["videos/codec"].asstr()[[0, 299, 300]].tolist() == ["", "", "h264"]
        assert f["videos/level"][[0, 299, 300]].tolist() == [-1, -1, 3]
    assert validate(path) == []
