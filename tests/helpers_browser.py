"""Test helpers: load a page in headless Chromium (or Chrome); return the DOM after scripts ran. Skips when none is installed."""
import os
import subprocess
import tempfile
from typing import Optional

from needs import browser as chromium_exe


def _run(url: str, extra: list, timeout: float) -> subprocess.CompletedProcess:
    # A throwaway profile per call, so parallel tests never share browser state.
    with tempfile.TemporaryDirectory(prefix="clipvid-chromium-") as profile:
        cmd = [chromium_exe(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               f"--user-data-dir={profile}", "--virtual-time-budget=5000", *extra, url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def dump_dom(url: str, timeout: float = 60.0) -> str:
    """The page's DOM as Chromium serialises it once its scripts ran (file:// or http:// URL)."""
    out = _run(url, ["--dump-dom"], timeout)
    if out.returncode != 0 or "<html" not in out.stdout:
        raise AssertionError(f"chromium could not load {url} (exit {out.returncode}): {out.stderr[-500:]}")
    return out.stdout


def screenshot(url: str, png: str, size: str = "1280,900", timeout: float = 60.0) -> Optional[str]:
    """Save a PNG of the page to `png` (for a person to look at); returns its path."""
    os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
    out = _run(url, [f"--screenshot={png}", f"--window-size={size}"], timeout)
    if out.returncode != 0 or not os.path.exists(png) or os.path.getsize(png) == 0:
        raise AssertionError(f"chromium could not screenshot {url} (exit {out.returncode}): {out.stderr[-500:]}")
    return png
