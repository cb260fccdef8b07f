"""Hostile file and class names, symlinks and duplicates: plain files, nothing executed, shown faithfully."""
import json
import os
import shutil

import pytest

from cache.reader import open_cache

from hostile_media import cache_cli, clip, extract

pytestmark = pytest.mark.slow

# Each one is a class folder and part of a file name; none may be run by a shell or read as an option.
NAMES = ["with space", "ünï-çødé 日本", "-dash", "--out=x.h5", "q\"uo'te", "new\nline", "$(touch PWNED1)",
         "`touch PWNED2`", "semi;touch PWNED3", "pipe|touch PWNED4", "back\\slash", "file:x", "pipe:1"]


@pytest.fixture(scope="module")
def names_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("names")
    src = base / "src"
    good = clip(base / "good.mp4")
    for i, name in enumerate(NAMES):
        os.makedirs(src / name)
        shutil.copy(good, src / name / f"{name} {i}.mp4")
    os.makedirs(src / "links")
    os.symlink(good, src / "links" / "link.mp4")                 # a link to a video is a video
    os.symlink(src / "links", src / "links" / "loop")           # a folder loop is not followed
    os.symlink(base / "missing.mp4", src / "links" / "dangling.mp4")
    os.makedirs(src / "bytes")
    shutil.copy(good, os.fsencode(src / "bytes") + b"/bad\xff\xfename.mp4")  # not valid UTF-8
    proc = extract(src, base / "n.h5", cwd=base)
    return base, proc


def _ids(path):
    with open_cache(os.fspath(path)) as r:
        return list(r.ids), [i for i, _ in r.failures], [why for _, why in r.failures], list(r.class_names)


def test_hostile_names_are_plain_files(names_run):
    base, proc = names_run
    assert proc.returncode == 1, proc.stderr            # the dangling link and the bytes name fail
    assert "Traceback" not in proc.stderr, proc.stderr
    ids, fails, reasons, classes = _ids(base / "n.h5")
    expected = {f"{name}/{name} {i}.mp4" for i, name in enumerate(NAMES)} | {"links/link.mp4"}
    assert set(ids) == expected                          # every name byte-for-byte, each once
    assert len(ids) == len(expected)
    assert set(classes) == set(NAMES) | {"links", "bytes"}
    assert dict(zip(fails, reasons)) == {
        "links/dangling.mp4": "file not found",
        "bytes/bad\\xff\\xfename.mp4": "file name is not valid UTF-8; rename the file"}
    assert "not valid UTF-8" in proc.stderr


def test_hostile_names_execute_nothing(names_run):
    base, _ = names_run
    for where in (base, base / "src", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))):
        assert not [f for f in os.listdir(where) if f.startswith("PWNED") or f in ("x.h5", "1")]
    assert sorted(os.listdir(base)) == ["good.mp4", "n.h5", "n.h5.d", "src"]  # no stray output

def test_hostile_names_cache_cli_shows_them(names_run):
    base, _ = names_run
    assert cache_cli("validate", base / "n.h5").returncode == 0
    out = cache_cli("info", base / "n.h5", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert set(info["classes"]) == set(NAMES) | {"links", "bytes"}
    assert all(info["classes"][name] == 1 for name in NAMES)

def test_hostile_names_source_warnings(names_run):
    _, proc = names_run
    assert "warning: 1 file names are not valid UTF-8" in proc.stderr
    assert "failed: links/dangling.mp4: file not found" in proc.stderr
