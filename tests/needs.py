"""What some tests need from outside the project (the eight real clips, a headless browser, ffprobe): skip with one line, or fail where CI requires it."""
import os
import shutil
from typing import List, NoReturn

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# .ci/run sets these to 1: CI must run every test, so there a missing clip or browser fails instead of skipping.
REQUIRE_REAL_VIDEOS = "CLIPVID_REQUIRE_REAL_VIDEOS"
REQUIRE_BROWSER = "CLIPVID_REQUIRE_BROWSER"
REQUIRE_FFPROBE = "CLIPVID_REQUIRE_FFPROBE"


def required(var: str) -> bool:
    """Whether the environment variable `var` asks for these tests to be required (set, and not 0)."""
    return os.environ.get(var, "").strip() not in ("", "0")


def missing(reason: str, var: str) -> NoReturn:
    """Skip the running test with `reason` (one line), or fail it when `var` makes the test required."""
    if required(var):
        pytest.fail(f"{reason} ({var} is set, so this test may not be skipped)", pytrace=False)
    pytest.skip(reason)


def real_videos_dir() -> str:
    """$CLIPVID_REAL_VIDEOS, else ../shared/fixtures/real_videos beside the checkout."""
    env = os.environ.get("CLIPVID_REAL_VIDEOS", "").strip()
    return os.path.abspath(env) if env else os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "real_videos")


def real_videos() -> List[str]:
    """The eight real fixture clips (never copied into the project); skips (or fails, in CI) when absent."""
    folder = real_videos_dir()
    if not os.path.isdir(folder):
        missing(f"the eight real clips are not in {folder}: set CLIPVID_REAL_VIDEOS to their folder to run this test",
                REQUIRE_REAL_VIDEOS)
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if not f.endswith(".md"))
    assert len(files) == 8, f"expected the eight fixture clips in {folder}, found {len(files)}"
    return files


def browser() -> str:
    """Path of a headless-capable Chromium or Chrome on PATH; skips (or fails, in CI) when there is none."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    missing("no headless browser (" + " / ".join(BROWSERS) + ") on PATH: install Chromium to run the page tests",
            REQUIRE_BROWSER)


def ffprobe() -> str:
    """Path of an ffprobe on PATH (the decoder's tests hold samples to its reading; the static ffmpeg
    the project uses comes without one); skips (or fails, in CI) when there is none."""
    path = shutil.which("ffprobe")
    if not path:
        missing("no ffprobe on PATH: install FFmpeg's tools (Debian: apt-get install ffmpeg) to run this test",
                REQUIRE_FFPROBE)
    return path
