"""Messy CSVs, duplicates, symlinks and empty folders: read faithfully, or refused with one line and no output."""
import os
import subprocess
import sys

import pytest

from clipvid.errors import EXIT_DATA, EXIT_PARTIAL, EXIT_USAGE
from cache.reader import open_cache
from extract.sources import SourceError, load_source
from hostile_media import ROOT, clip, extract, one_line_error

CAPTION = 'a <b>"caption"</b>, with $(touch PWNED) & `x`'


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    base = tmp_path_factory.mktemp("sources")
    os.makedirs(base / "clips")
    clip(base / "clips" / "a.mp4")
    clip(base / "clips" / "b.mp4", 2.0)
    os.symlink(base / "clips" / "a.mp4", base / "clips" / "link.mp4")
    rows = ["path,label,split,caption,notes",
            f'clips/a.mp4,jump,train,"{CAPTION.replace(chr(34), chr(34) * 2)}",x',
            "clips/b.mp4,,test,,",                      # empty label: unlabelled
            "clips/link.mp4,run,train,,",
            "./clips/a.mp4,jump,train,,",                 # the same file again, spelt differently
            "clips/nowhere.mp4,run,val,,"]               # an unknown path
    with open(base / "list.csv", "wb") as f:
        f.write(b"\xef\xbb\xbf" + "\r\n".join(rows).encode() + b"\r\n")
    return base


def _cli(base, *args):
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "extract", *map(os.fspath, args), "--clip-model", "random:tiny"],
                          cwd=base, capture_output=True, text=True, timeout=120, env=env)


def test_hostile_csv_bom_crlf_read_faithfully(base):
    src = load_source(os.fspath(base / "list.csv"))
    assert [i.id for i in src.items] == ["clips/a.mp4", "clips/b.mp4", "clips/link.mp4", "clips/nowhere.mp4"]
    assert src.items[0].caption == CAPTION and src.items[0].split == "train"
    assert src.items[1].label is None and src.classes == ["jump", "run"]
    assert any("listed more than once" in w for w in src.warnings)
    assert any("empty label" in w for w in src.warnings)


@pytest.mark.slow
def test_hostile_csv_extract_keeps_good_and_records_unknown(base):
    proc = extract(base / "list.csv", base / "c.h5")
    assert proc.returncode == EXIT_PARTIAL, proc.stderr
    assert f"failed: clips/nowhere.mp4: file not found (looked for {base / 'clips' / 'nowhere.mp4'})" in proc.stderr
    with open_cache(os.fspath(base / "c.h5")) as r:
        assert sorted(r.ids) == ["clips/a.mp4", "clips/b.mp4", "clips/link.mp4"]
        row = {v: i for i, v in enumerate(r.ids)}
        assert r.captions[row["clips/a.mp4"]] == CAPTION
        assert r.labels[row["clips/b.mp4"]] == -1
        assert r.failures == [("clips/nowhere.mp4", "file not found")]
    assert not os.path.exists(base / "PWNED")


BAD_CSVS = {
    "no_path.csv": ("label,split\njump,train\n", "no 'path' column"),
    "short_row.csv": ("path,label,split\nclips/a.mp4,jump,train\nclips/b.mp4,run\n", "line 3 has 2 fields"),
    "long_row.csv": ("path,label\nclips/a.mp4,jump,extra\n", "line 2 has 3 fields, the header has 2"),
    "empty.csv": ("", "empty CSV"),
    "only_header.csv": ("path,label\n", "no videos found"),
    "empty_path.csv": ("path,label\n,jump\n", "line 2 has an empty path"),
    "latin1.csv": ("path,label\nclips/a.mp4,caf\xe9\n".encode("latin-1"), "not UTF-8 text"),
    "kinetics_bad.csv": ("label,youtube_id,time_start,time_end,split\njump,abc,x,10,train\n",
                         "time_start/time_end are not numbers"),
}


@pytest.mark.parametrize("name", sorted(BAD_CSVS))
def test_hostile_csv_refused_with_reason(base, name):
    text, message = BAD_CSVS[name]
    with open(base / name, "wb") as f:
        f.write(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(SourceError) as err:
        load_source(os.fspath(base / name))
    assert message in str(err.value) and name in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["short_row.csv", "latin1.csv"])
def test_hostile_csv_refused_by_cli_without_output(base, name):
    test_hostile_csv_refused_with_reason(base, name)
    out = base / f"{name}.h5"
    proc = _cli(base, base / name, "--out", out)
    assert proc.returncode == EXIT_DATA, proc.stderr
    assert BAD_CSVS[name][1] in one_line_error(proc)
    assert not [f for f in os.listdir(base) if f.startswith(f"{name}.h5")]


def test_hostile_empty_folder_refused(base):
    os.makedirs(base / "empty" / "class_a")
    open(base / "empty" / "notes.txt", "w").close()
    proc = _cli(base, base / "empty", "--out", base / "e.h5")
    assert proc.returncode == EXIT_DATA
    assert "no videos found" in one_line_error(proc)
    assert not [f for f in os.listdir(base) if f.startswith("e.h5")]


def test_hostile_single_video_as_source_refused(base):
    proc = _cli(base, base / "clips" / "a.mp4", "--out", base / "s.h5")
    assert proc.returncode == EXIT_USAGE
    assert "a single video is not a source" in one_line_error(proc)
