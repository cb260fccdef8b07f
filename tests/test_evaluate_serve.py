"""The search page: a real server on 127.0.0.1, real HTTP requests, real videos, Debian's headless chromium."""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest
from conftest import ROOT
from helpers_browser import dump_dom, screenshot
from helpers_video import free_port

from cache.reader import open_cache
from evaluate.searcher import open_searcher
from evaluate.serve import SearchServer
from test_evaluate_support import EVIL, make_cache, make_video, tiny_clip_hash, unit

pytestmark = pytest.mark.slow

HOSTILE = 'a ball"><script>alert(3)</script>&amp;'
FRAMES = 6


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A cache over three real clips under root/; outside/ holds a file that must never be served."""
    base = tmp_path_factory.mktemp("serve")
    root, outside = base / "root", base / "outside"
    weights_hash, dim = tiny_clip_hash()
    rng = np.random.default_rng(3)
    names = ["juggling", EVIL]
    ids = ["clips/a.mp4", "clips/b c.mp4", "clips/d.mp4"]
    t = np.linspace(0.1, 1.6, FRAMES, dtype=np.float32)
    videos = [{"id": v, "emb": unit(rng.normal(size=(FRAMES, dim))), "label": names[i % 2], "t": t,
               "caption": f"caption {EVIL} {i}"} for i, v in enumerate(ids)]
    for vid in ids:
        make_video(str(root / vid), seconds=2.0)
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"SECRET" * 100)
    (root / "notes.txt").write_text("PRIVATE notes beside the videos\n")        # under the root, not a video
    make_video(str(root / "clips" / "uncached.mp4"), seconds=1.0)            # a video the cache does not hold
    os.symlink(outside / "secret.mp4", root / "clips" / "link.mp4")   # a symlink leading out of the root
    path = make_cache(str(base / "cache.h5"), names, unit(rng.normal(size=(2, dim))), videos,
                      weights_hash=weights_hash, frames=FRAMES, source_root=str(root))
    return {"cache": path, "root": str(root), "base": base, "ids": ids}


@pytest.fixture(scope="module")
def server(site):
    """An in-process server on a free port, loaded like --serve loads; stopped after the module."""
    reader = open_cache(site["cache"])
    srv = SearchServer("127.0.0.1", 0, site["root"], 10, "RANDOM")
    loader = srv.start_loading(lambda stage: open_searcher(reader, None, None, "cpu", packed=True, progress=False,
                                                           stage=stage))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    loader.join(120)
    assert srv.searcher is not None, srv.failure
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(10)
    reader.close()


def get(srv, path, headers=None):
    """(status, headers, body) of a raw GET: the path goes out exactly as written (no client normalisation)."""
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), body


def test_page_answers_a_hostile_query_with_escaped_hits(server, site):
    from urllib.parse import quote
    status, headers, body = get(server, "/?q=" + quote(HOSTILE))
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "<script" not in page and EVIL not in page                      # query, class name and captions
    assert "&lt;script&gt;alert(3)&lt;/script&gt;&amp;amp;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert len(re.findall(r'<tr class="hit">', page)) == 3
    ids = re.findall(r'<code class="vid">([^<]*)</code>', page)
    assert sorted(ids) == sorted(site["ids"])
    assert re.findall(r'<video controls preload="metadata" poster="[^"]+" src="/video/1/clips/b%20c\.mp4#t=[\d.]+">', page)


def test_video_bytes_and_ranges(server, site):
    data = open(os.path.join(site["root"], "clips", "b c.mp4"), "rb").read()
    assert list(server.searcher.reader.ids).index("clips/b c.mp4") == 1
    status, headers, body = get(server, "/video/1/clips/b%20c.mp4")
    assert status == 200 and body == data and headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Type"] == "video/mp4"
    status, headers, body = get(server, "/video/1/clips/b%20c.mp4", {"Range": "bytes=10-19"})
    assert status == 206 and body == data[10:20] and headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    status, _, body = get(server, "/video/1/clips/b%20c.mp4", {"Range": "bytes=-7"})
    assert status == 206 and body == data[-7:]
    status, _, body = get(server, "/video/1/clips/b%20c.mp4", {"Range": f"bytes={len(data) - 3}-"})
    assert status == 206 and body == data[-3:]
    status, headers, _ = get(server, "/video/1/clips/b%20c.mp4", {"Range": f"bytes={len(data)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}"


@pytest.mark.parametrize("path", [
    "/video/../outside/secret.mp4", "/video/clips/../../outside/secret.mp4", "/video/%2e%2e/outside/secret.mp4",
    "/video/%2e%2e%2foutside%2fsecret.mp4", "/video/%252e%252e/outside/secret.mp4",
    "/video/clips/..%5c..%5coutside%5csecret.mp4", "/video//etc/passwd", "/video/%2Fetc%2Fpasswd",
    "/video/clips/link.mp4", "/video/clips", "/video/", "/video/clips/a.mp4%00.txt", "/video/%ff%fe",
    "/etc/passwd", "/../../etc/passwd", "/video/0/../outside/secret.mp4", "/video/0/clips/link.mp4",
    "/video/1/clips/../../outside/secret.mp4", "/video/-1/clips/d.mp4", "/video/99/clips/d.mp4"])
def test_nothing_outside_the_root_is_served(server, path):
    status, _, body = get(server, path)
    assert status in (400, 404) and b"SECRET" not in body and b"root:" not in body


@pytest.mark.parametrize("path", [
    "/video/notes.txt", "/video/0/notes.txt", "/video/2/notes.txt", "/video/clips/uncached.mp4",
    "/video/0/clips/uncached.mp4", "/video/clips/a.mp4", "/video/1/clips/a.mp4", "/video/0/clips/a.mp4/"])
def test_only_the_caches_own_videos_are_served(server, site, path):
    """A file under the source root that is not one of the cache's videos (notes, another video), or a
    video asked for by a row that is not its own, is refused: the root may be a whole home folder."""
    status, _, body = get(server, path)
    assert status == 404 and b"PRIVATE" not in body and not body.startswith(b"\x00\x00")
    assert get(server, "/video/0/clips/a.mp4")[0] == 200      # the same file by its own row and id


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "localhost.evil:{port}",
                                  "", "127.0.0.1:{port}.evil"])
def test_foreign_host_headers_are_refused(server, host):
    """DNS rebinding: a page of another site whose name now points at 127.0.0.1 sends its own name."""
    port = server.server_address[1]
    for path in ("/", "/video/0/clips/a.mp4", "/status", "/thumb?row=0&t=0"):
        status, _, body = get(server, path, {"Host": host.format(port=port)})
        assert status == 421 and body == b"unknown Host\n", (host, path)
    for ok in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert get(server, "/status", {"Host": ok})[0] == 200


def test_thumbnails_and_status(server):
    status, headers, body = get(server, "/thumb?row=1&t=0.5")
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
    assert get(server, "/thumb?row=99&t=0")[0] == 404
    assert get(server, "/thumb?row=x")[0] == 400
    assert get(server, "/thumb?row=0&t=nan")[0] == 404
    status, _, body = get(server, "/status")
    assert status == 200 and json.loads(body) == {"ready": True, "stage": "ready", "videos": 3}


def test_page_shows_progress_while_the_index_loads(site):
    release = threading.Event()
    srv = SearchServer("127.0.0.1", 0, site["root"], 10)

    def slow_load(stage):
        stage("reading the video index (3 videos)")
        release.wait(30)
        raise RuntimeError("never loaded")

    srv.start_loading(slow_load)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        status, headers, body = get(srv, "/?q=x")
        assert status == 503 and headers["Retry-After"] == "1"
        assert "loading: reading the video index (3 videos)" in body.decode()
    finally:
        release.set()
        thread.join(30)       # the failed load stops the server by itself
        srv.server_close()
    assert isinstance(srv.failure, RuntimeError) and not thread.is_alive()


def test_served_page_in_chromium(server, tmp_path):
    url = f"{server.url}?q=" + urllib.request.quote(HOSTILE)
    dom = dump_dom(url)
    assert "alert(3)" in dom and "<script>alert" not in dom       # shown as text, never run
    assert len(re.findall(r'<tr class="hit">', dom)) == 3
    assert re.search(r'<video[^>]+src="/video/\d+/clips/[^"#]+#t=[\d.]+"', dom)
    png = screenshot(url, str(tmp_path / "search_page.png"))
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(png) > 5000


def test_serve_command_end_to_end(site, tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "evaluate.search", site["cache"], "--serve", "--port", str(port),
                             "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith(f"serving http://127.0.0.1:{port}/")
        deadline = time.time() + 120
        while time.time() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=10) as r:
                if json.load(r)["ready"]:
                    break
            time.sleep(0.2)
        dom = dump_dom(f"http://127.0.0.1:{port}/?q=juggling")
        assert len(re.findall(r'<tr class="hit">', dom)) == 3 and "RANDOM CLIP WEIGHTS" in dom
        screenshot(f"http://127.0.0.1:{port}/?q=juggling", str(tmp_path / "served.png"))
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert os.path.getsize(tmp_path / "served.png") > 5000
