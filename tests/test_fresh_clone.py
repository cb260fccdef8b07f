"""A clone without the real clips or a browser passes, skipping those tests with one line; CI requires them."""
import os
import re
import subprocess
import sys

import pytest

import needs
from conftest import ROOT

USES_CLIPS = "def test_uses_the_clips(real_videos):\n    assert len(real_videos) == 8\n"


def _pytest(tmp_path, **env) -> subprocess.CompletedProcess:
    """pytest on a test that asks for the real clips, with this suite's fixtures (tests/conftest.py as a plugin)
    and ./run_tests.sh's -ra (a line per skip reason)."""
    test = tmp_path / "test_uses_clips.py"
    test.write_text(USES_CLIPS)
    full = {k: v for k, v in os.environ.items() if not k.startswith("CLIPVID_REQUIRE_")}
    full.update(env, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "tests"), ROOT]))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider", "-p", "conftest",
                           str(test)], cwd=tmp_path, capture_output=True, text=True, env=full, timeout=600)


def test_missing_real_clips_skip_with_one_line_saying_how(tmp_path):
    gone = str(tmp_path / "nowhere")
    out = _pytest(tmp_path, CLIPVID_REAL_VIDEOS=gone)
    assert out.returncode == 0, out.stdout + out.stderr
    skips = [line for line in out.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skips) == 1 and gone in skips[0] and "CLIPVID_REAL_VIDEOS" in skips[0], out.stdout
    assert re.search(r"\b1 skipped\b", out.stdout) and "passed" not in out.stdout, out.stdout


def test_ci_turns_the_missing_clips_into_a_failure(tmp_path):
    out = _pytest(tmp_path, CLIPVID_REAL_VIDEOS=str(tmp_path / "nowhere"), CLIPVID_REQUIRE_REAL_VIDEOS="1")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 error" in out.stdout and "CLIPVID_REQUIRE_REAL_VIDEOS is set" in out.stdout, out.stdout


def test_real_clips_are_found_where_the_variable_points(tmp_path, monkeypatch):
    for i in range(8):
        (tmp_path / f"clip{i}.mp4").write_bytes(b"")
    (tmp_path / "SOURCES.md").write_text("where they came from\n")
    monkeypatch.setenv("CLIPVID_REAL_VIDEOS", str(tmp_path))
    assert needs.real_videos() == [str(tmp_path / f"clip{i}.mp4") for i in range(8)]
    os.remove(tmp_path / "clip7.mp4")              # a folder that exists but lost a clip is broken, not absent
    with pytest.raises(AssertionError, match="found 7"):
        needs.real_videos()


def test_no_browser_skips_or_fails_when_required(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))      # an empty folder: no chromium, chromium-browser or google-chrome
    monkeypatch.delenv(needs.REQUIRE_BROWSER, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no headless browser"):
        needs.browser()
    monkeypatch.setenv(needs.REQUIRE_BROWSER, "1")
    with pytest.raises(pytest.fail.Exception, match="CLIPVID_REQUIRE_BROWSER is set"):
        needs.browser()
    fake = tmp_path / "google-chrome"               # any of the three names is found on PATH
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert needs.browser() == str(fake)


def test_ci_runs_the_readme_test_command_and_set_up_installs_nothing_system_wide():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    shown = re.search(r"^(\./run_tests\.sh)\s", readme, re.M).group(1)
    ci = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read()
    lines = [line for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert lines[-1] == shown                      # the last thing CI does is exactly what README tells a user to run
    assert re.search(r"^export .*CLIPVID_REQUIRE_REAL_VIDEOS=1", ci, re.M)
    assert re.search(r"^export .*CLIPVID_REQUIRE_BROWSER=1", ci, re.M)
    for script in ("run_tests.sh", "run_pipeline.sh", os.path.join("scripts", "ensure_env.sh")):
        for n, line in enumerate(open(os.path.join(ROOT, script), encoding="utf-8"), 1):
            code = re.sub(r"#.*|\"[^\"]*\"|'[^']*'", "", line)      # what runs: not comments or messages
            assert not re.search(r"\bsudo\b|\b(apt-get|apt|dnf|yum|brew)\s+(install|update)\b", code), \
                f"{script}:{n} installs system-wide: {line.strip()}"
