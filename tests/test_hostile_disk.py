"""A full disk (a 2 MB tmpfs): a clear one-line error, a cache that still validates, and a clean resume."""
import os
import shutil

import pytest

from clipvid.errors import EXIT_DATA, EXIT_OK
from cache.reader import open_cache
from hostile_media import cache_cli, clip, extract, one_line_error, tmpfs

pytestmark = pytest.mark.slow


@pytest.fixture
def disk(tmp_path):
    with tmpfs(tmp_path / "disk", "size=2m") as folder:
        yield folder


def _fill(disk, keep: int = 0):
    """Write a filler file until the file system has at most `keep` bytes left."""
    with open(disk / "filler", "wb") as f:
        try:
            while True:
                st = os.statvfs(disk)
                free = st.f_bavail * st.f_frsize - keep
                if free <= 0:
                    break
                f.write(b"\0" * min(free, 1 << 16))
                f.flush()
        except OSError:
            pass


def test_hostile_full_disk(tmp_path, disk):
    src = tmp_path / "src"
    os.makedirs(src / "a")
    for i in range(2):
        clip(src / "a" / f"v{i}.mp4")
    out = disk / "c.h5"
    first = extract(src, out)
    assert first.returncode == EXIT_OK, first.stderr
    for i in range(2, 6):
        shutil.copy(src / "a" / "v0.mp4", src / "a" / f"v{i}.mp4")
    # keep=0: neither the frames (they go into holes of the shard's frame file) nor the journal can be
    # written; 12 kB: the journal fits, the frames or manifest do not.
    for keep, where in ((0, "c.h5.d/000001.frames.h5: cannot write"), (12_000, ": cannot write")):
        _fill(disk, keep)
        full = extract(src, out)
        assert full.returncode == EXIT_DATA, full.stderr
        line = one_line_error(full)
        assert where in line and "No space left on device" in line, line
        assert cache_cli("validate", out).returncode == 0
        with open_cache(os.fspath(out)) as r:
            assert sorted(r.ids) == ["a/v0.mp4", "a/v1.mp4"]   # what was cached before is intact
        os.unlink(disk / "filler")
    again = extract(src, out)
    assert again.returncode == EXIT_OK, again.stderr
    assert cache_cli("validate", out).returncode == 0
    with open_cache(os.fspath(out)) as r:
        assert sorted(r.ids) == [f"a/v{i}.mp4" for i in range(6)]
    assert sorted(os.listdir(disk)) == ["c.h5", "c.h5.d"]   # no temp file or journal left behind
    assert {f.split(".", 1)[-1] for f in os.listdir(disk / "c.h5.d")} == {"frames.h5", "videos.h5", "lock"}
