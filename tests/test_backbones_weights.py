"""Weights arrive the way users expect (issue 25, point 0): downloaded on first use through clip's own
downloader with its checksum, from a local HTTP server here; offline, at once and in one line."""
import functools
import hashlib
import http.server
import json
import os
import shutil
import socket
import threading
import time

import pytest
import torch

from extract import weights
from extract.clip_model import load_clip
from extract.weightbase import WeightsUnavailable
from extract.weights import TEST_URLS_ENV, resolve_weights


class _Server:
    """python's http.server in a thread, serving a folder and counting the requests it got."""

    def __init__(self, folder: str):
        hits = self.hits = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=folder))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path, monkeypatch):
    """Small generated CLIP weights (random:tiny's file) served at <sha256>/ViT-B-32.pt, as clip's own
    addresses are laid out; an empty home, and downloads allowed for this test only."""
    monkeypatch.setenv("CLIPVID_HOME", str(tmp_path / "clipvid"))
    small = resolve_weights("random:tiny")[0]
    sha = hashlib.sha256(open(small, "rb").read()).hexdigest()
    os.makedirs(tmp_path / "www" / sha)
    os.makedirs(tmp_path / "www" / ("0" * 64))
    shutil.copy(small, tmp_path / "www" / sha / "ViT-B-32.pt")
    shutil.copy(small, tmp_path / "www" / ("0" * 64) / "ViT-B-32.pt")   # served under a wrong checksum
    server = _Server(str(tmp_path / "www"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CLIPVID_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv(TEST_URLS_ENV, json.dumps({"ViT-B/32": f"{server.url}/{sha}/ViT-B-32.pt"}))
    yield server, small, sha, tmp_path / "home" / ".cache" / "clip"
    server.close()


def test_named_weights_are_downloaded_once_then_loaded(served, capfd):
    server, small, sha, root = served
    path, is_random = resolve_weights("ViT-B/32")
    assert path == str(root / "ViT-B-32.pt") and not is_random
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == sha
    assert len(server.hits) == 1 and "%" in capfd.readouterr().err   # clip's progress bar
    assert resolve_weights("ViT-B/32")[0] == path and len(server.hits) == 1   # kept: not fetched again
    assert os.listdir(root) == ["ViT-B-32.pt"]                                # no partial download left
    model = load_clip("ViT-B/32", torch.device("cpu"))                      # through clip's real loader
    assert model.dim == 64 and model.weights_hash == sha


def test_a_download_with_the_wrong_checksum_is_refused(served, monkeypatch):
    server, _, _, root = served
    monkeypatch.setenv(TEST_URLS_ENV, json.dumps({"ViT-B/32": f"{server.url}/{'0' * 64}/ViT-B-32.pt"}))
    with pytest.raises(WeightsUnavailable, match="checksum") as err:
        resolve_weights("ViT-B/32")
    assert "\n" not in str(err.value) and f"to {root}" in str(err.value)
    assert len(server.hits) == 1 and not os.path.exists(root / "ViT-B-32.pt") and os.listdir(root) == []


def test_offline_fails_at_once_naming_the_file_and_where(served, monkeypatch):
    server, _, _, root = served
    monkeypatch.setenv("CLIPVID_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(WeightsUnavailable) as err:
        resolve_weights("ViT-B/32")
    assert time.monotonic() - start < 1.0 and not server.hits
    message = str(err.value)
    assert "ViT-B-32.pt" in message and str(root) in message and "CLIPVID_OFFLINE" in message


@pytest.mark.timeout(60)   # whatever happens, this test cannot hang the suite
def test_a_server_that_never_answers_is_given_up_on(served, monkeypatch):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)            # connections complete in the kernel, but nothing is ever sent back
    try:
        monkeypatch.setattr(weights, "CONNECT_TIMEOUT", 1.0)
        monkeypatch.setenv(TEST_URLS_ENV, json.dumps(
            {"ViT-B/32": f"http://127.0.0.1:{silent.getsockname()[1]}/{'0' * 64}/ViT-B-32.pt"}))
        start = time.monotonic()
        with pytest.raises(WeightsUnavailable, match="could not be downloaded"):
            resolve_weights("ViT-B/32")
        assert time.monotonic() - start < 20
        assert socket.getdefaulttimeout() is None      # the process-wide default is put back
    finally:
        silent.close()
