"""Hostile ids, labels and captions in reports and search pages: escaped in HTML, never markup."""
import html
import os
import re
import subprocess
import sys

import pytest

from hostile_media import ROOT, clip, extract

pytestmark = pytest.mark.slow

FILE = "<img src=x onerror=alert(1)>.mp4"
LABEL = "<svg onload=alert(2)>"
CAPTION = "</script><script>alert(3)</script> & \"double\" 'single'"
QUERY = "<iframe src=javascript:alert(4)>"
RAW = ["<img src=x", "<svg onload", "<script>alert(3)", "<iframe src=javascript"]


def _cli(*args):
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", *map(os.fspath, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    os.makedirs(base / "v")
    rows = ["path,label,split,caption"]
    for i in range(12):
        name = FILE if i == 0 else f"clip{i}.mp4"
        clip(base / "v" / name, 1.0 + 0.1 * i)
        label = LABEL if i % 2 else "plain"
        rows.append(f'"v/{name}","{label}",{["train", "val", "test"][i % 3]},"{CAPTION.replace(chr(34), 2 * chr(34))} {i}"')
    open(base / "list.csv", "w").write("\n".join(rows) + "\n")
    proc = extract(base / "list.csv", base / "c.h5")
    assert proc.returncode == 0, proc.stderr
    proc = _cli("train", base / "c.h5", "--head", "meanpool,linear", "--out", base / "runs", "--epochs", "2",
                "--quiet")
    assert proc.returncode == 0, proc.stderr
    return base


def _assert_escaped(page: str):
    for raw in RAW:
        assert raw not in page, raw
    assert html.escape(LABEL, quote=False) in page or html.escape(LABEL) in page


def test_hostile_report_escapes_user_strings(runs):
    proc = _cli("evaluate", runs / "c.h5", "--runs", runs / "runs", "--out", runs / "report", "--quiet")
    assert proc.returncode in (0, 1), proc.stderr
    page = open(runs / "report" / "report.html", encoding="utf-8").read()
    _assert_escaped(page)
    assert not re.search(r"<script[^>]*>[^<]*alert", page)


def test_hostile_search_page_escapes_query_and_ids(runs):
    proc = _cli("evaluate.search", runs / "c.h5", QUERY, "--html", runs / "search.html", "--top", "12",
                "--root", runs, "--quiet")
    assert proc.returncode == 0, proc.stderr
    page = open(runs / "search.html", encoding="utf-8").read()
    _assert_escaped(page)
    assert html.escape(FILE, quote=False) in page or html.escape(FILE) in page
