"""Identity of cached videos: an absolute source root, refusal of another folder's videos and of
changed files under cached ids (one line naming the file and the option), and --replace-changed."""
import os
import shutil

import numpy as np
import pytest

from clipvid.errors import EXIT_DATA, EXIT_OK
from cache.reader import open_cache
from cache.validate import validate
from extract.identity import fingerprint
from tests.hostile_media import ROOT, clip, extract, one_line_error

pytestmark = pytest.mark.slow

IDS = ["a/v0.mp4", "a/v1.mp4", "b/v2.mp4"]


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    """A source folder cached through a *relative* path, as a user in its parent folder would."""
    base = tmp_path_factory.mktemp("identity")
    for k, vid in enumerate(IDS):
        os.makedirs(base / "src" / os.path.dirname(vid), exist_ok=True)
        clip(base / "src" / vid, 1.0 + 0.2 * k)
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONWARNINGS="ignore")
    proc = extract("src", "c.h5", cwd=base, env=env)
    assert proc.returncode == EXIT_OK, proc.stderr
    return base


def test_relative_folder_stores_an_absolute_root(cached):
    with open_cache(os.fspath(cached / "c.h5")) as r:
        assert r.settings["source_root"] == os.fspath(cached / "src")
        assert sorted(r.ids) == IDS
        for vid, content in zip(r.ids, r.content):              # each video's fingerprint is recorded
            assert content == fingerprint(os.fspath(cached / "src" / vid)) and content.count(":") == 1


def test_another_folder_is_refused(cached, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(cached / "src", other)                     # same relative paths, another folder
    out = tmp_path / "c.h5"
    shutil.copy(cached / "c.h5", out)
    shutil.copytree(cached / "c.h5.d", f"{out}.d")
    proc = extract(other, out)
    assert proc.returncode == EXIT_DATA
    line = one_line_error(proc)
    assert os.fspath(cached / "src") in line and os.fspath(other) in line and "--allow-new-root" in line, line
    assert "skipped" not in proc.stdout
    allowed = extract(other, out, "--allow-new-root")          # explicitly allowed: identical files, skipped
    assert allowed.returncode == EXIT_OK, allowed.stderr
    assert "skipped 3 already cached" in allowed.stdout
    with open_cache(os.fspath(out)) as r:
        assert r.settings["source_root"] == os.fspath(other)


def test_changed_file_is_refused_then_replaced(cached, tmp_path):
    src, out = tmp_path / "src", tmp_path / "c.h5"
    shutil.copytree(cached / "src", src)
    shutil.copy(cached / "c.h5", out)
    shutil.copytree(cached / "c.h5.d", f"{out}.d")
    with open_cache(os.fspath(out)) as r:                      # a copied cache keeps its own root
        before = {vid: r.emb([i])[0] for i, vid in enumerate(r.ids)}
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    rooted = extract(src, out, "--allow-new-root", env=env)    # move the cache's root to the copy
    assert rooted.returncode == EXIT_OK, rooted.stderr
    clip(src / "a" / "v1.mp4", 2.5, "80x60")                   # same name, other content
    proc = extract(src, out)
    assert proc.returncode == EXIT_DATA
    line = one_line_error(proc)
    assert os.fspath(src / "a" / "v1.mp4") in line and "--replace-changed" in line, line
    assert validate(os.fspath(out)) == []
    replaced = extract(src, out, "--replace-changed")
    assert replaced.returncode == EXIT_OK, replaced.stderr
    assert "cached 1 (1 changed files re-extracted), skipped 2 already cached" in replaced.stdout
    assert validate(os.fspath(out)) == []
    with open_cache(os.fspath(out)) as r:
        assert sorted(r.ids) == IDS
        rows = {vid: i for i, vid in enumerate(r.ids)}
        assert not np.array_equal(r.emb([rows["a/v1.mp4"]])[0], before["a/v1.mp4"])
        assert r.duration[rows["a/v1.mp4"]] == pytest.approx(2.5, abs=0.2)
        for vid in ("a/v0.mp4", "b/v2.mp4"):
            assert np.array_equal(r.emb([rows[vid]])[0], before[vid])
        assert r.content[rows["a/v1.mp4"]] == fingerprint(os.fspath(src / "a" / "v1.mp4"))
    again = extract(src, out)                                  # and now it is the cached file
    assert again.returncode == EXIT_OK and "skipped 3 already cached" in again.stdout


def test_fingerprints_of_many_files_reuse_one_pool(tmp_path):
    """extract fingerprints each task's files on the main process that feeds the workers: its
    threads outlive a call and never grow past THREADS, and every file gets what fingerprint() gives."""
    import threading
    from extract.identity import THREADS, fingerprints
    paths = []
    for k in range(12):
        p = tmp_path / f"f{k}.bin"
        p.write_bytes(os.urandom(1000 + k) + (b"x" * (3 << 20) if k % 3 == 0 else b""))
        paths.append(os.fspath(p))
    paths.append(os.fspath(tmp_path / "missing.bin"))
    first = fingerprints(paths)
    for _ in range(4):
        again = fingerprints(paths[::-1])
    pool = [t for t in threading.enumerate() if t.name.startswith("fingerprint")]
    assert 1 <= len(pool) <= THREADS
    assert first == [fingerprint(p) for p in paths] and again == first[::-1]
    assert first[-1] == "" and len(set(first[:-1])) == 12
