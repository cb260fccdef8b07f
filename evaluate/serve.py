"""`--serve`: a local web server with the search page, best-moment thumbnails and the videos (byte ranges)."""
import ipaddress
import json
import math
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional
from urllib.parse import parse_qs, unquote, urlsplit

from evaluate.media import parse_range, safe_path
from evaluate.search_page import served_page
from evaluate.searcher import Searcher, normalise_query

MAX_QUERY = 1000          # characters; CLIP reads 77 tokens anyway
CHUNK = 1 << 16           # bytes per write when sending a video
HEADERS = {"Content-Security-Policy": "default-src 'none'; img-src 'self' data:; media-src 'self'; "
                                      "style-src 'unsafe-inline'; form-action 'self'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
VIDEO_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
               ".mkv": "video/x-matroska", ".avi": "video/x-msvideo", ".ogv": "video/ogg"}


def results_page(searcher: Searcher, query: str, top: int, banner: str = "") -> str:
    """What the server answers for one query (the per-request path: text encoder, rank, best moments, page)."""
    hits = searcher.query(query, top) if query else None
    return served_page(query, hits, searcher.source, len(searcher.index), banner)


class SearchServer(ThreadingHTTPServer):
    """The HTTP server plus what its handlers need; the searcher arrives from a loading thread."""
    daemon_threads = True

    def __init__(self, host: str, port: int, root: str, top: int, banner: str = ""):
        super().__init__((host, port), Handler)
        self.root, self.top, self.banner = root, top, banner
        self.hosts = allowed_hosts(host, self.server_address[1])
        self.searcher: Optional[Searcher] = None
        self.stage = "starting"
        self.failure: Optional[BaseException] = None
        self.lock = threading.Lock()   # one query at a time through CLIP and the index

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start_loading(self, load: Callable[[Callable[[str], None]], Searcher]) -> threading.Thread:
        """Run load(stage_callback) in a thread; on failure remember why and stop serving."""
        def run():
            try:
                self.searcher = load(self.set_stage)
                self.stage = "ready"
            except BaseException as exc:  # reported by the caller after serve_forever returns
                self.failure = exc
                self.shutdown()
        thread = threading.Thread(target=run, name="load-index", daemon=True)
        thread.start()
        return thread

    def set_stage(self, text: str) -> None:
        self.stage = text


def allowed_hosts(host: str, port: int) -> set:
    """The Host headers this server answers: the names it listens on, with its port. Any other name is
    refused, so a web page elsewhere cannot rebind its own name to 127.0.0.1 and read what we serve."""
    names = {host}
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None and (ip.is_loopback or ip.is_unspecified):
        names |= {"localhost", "127.0.0.1", "::1"}
    if ip is not None and ip.is_unspecified:   # listening everywhere: the machine's own names too
        names |= {socket.gethostname(), socket.getfqdn()}
    out = set()
    for name in names:
        name = name.lower()
        shown = f"[{name}]" if ":" in name else name
        out |= {f"{shown}:{port}"} | ({shown} if port == 80 else set())
    return out


class Handler(BaseHTTPRequestHandler):
    server: SearchServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # noqa: A002 (the stdlib's name); requests are not logged
        pass

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def _route(self, head: bool) -> None:
        url = urlsplit(self.path)
        if (self.headers.get("Host") or "").strip().lower() not in self.server.hosts:
            return self._send(421, b"unknown Host\n", "text/plain; charset=utf-8", head)
        try:
            if url.path == "/":
                self._page(parse_qs(url.query), head)
            elif url.path == "/status":
                self._status(head)
            elif url.path == "/thumb":
                self._thumb(parse_qs(url.query), head)
            elif url.path.startswith("/video/"):
                self._video(unquote(url.path[len("/video/"):], errors="strict"), head)
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8", head)
        except UnicodeDecodeError:
            self._send(400, b"bad encoding\n", "text/plain; charset=utf-8", head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away (it often does while seeking a video)

    def _send(self, status: int, body: bytes, ctype: str, head: bool, extra: Optional[dict] = None) -> None:
        self.send_response(status)
        for k, v in {**HEADERS, "Content-Type": ctype, "Content-Length": str(len(body)), **(extra or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _page(self, params: dict, head: bool) -> None:
        srv = self.server
        query = normalise_query(params.get("q", [""])[0])[:MAX_QUERY]
        if srv.searcher is None:
            page = served_page(query, None, "", 0, srv.banner, loading=f"loading: {srv.stage} ...")
            self._send(503, page.encode(), "text/html; charset=utf-8", head, {"Retry-After": "1"})
            return
        with srv.lock:
            page = results_page(srv.searcher, query, srv.top, srv.banner)
        self._send(200, page.encode(), "text/html; charset=utf-8", head)

    def _status(self, head: bool) -> None:
        srv = self.server
        body = {"ready": srv.searcher is not None, "stage": srv.stage,
                "videos": len(srv.searcher.index) if srv.searcher else None}
        self._send(200, json.dumps(body).encode(), "application/json", head)

    def _thumb(self, params: dict, head: bool) -> None:
        from evaluate.thumbs import find_video, grab_frame
        srv = self.server
        try:
            row, t = int(params["row"][0]), float(params.get("t", ["0"])[0])
        except (KeyError, ValueError):
            return self._send(400, b"row and t are numbers\n", "text/plain; charset=utf-8", head)
        if srv.searcher is None or not 0 <= row < len(srv.searcher.index) or not math.isfinite(t):
            return self._send(404, b"no such video\n", "text/plain; charset=utf-8", head)
        path = find_video(srv.root, str(srv.searcher.reader.ids[row]))
        jpg = grab_frame(path, max(0.0, t)) if path else None
        if jpg is None:
            return self._send(404, b"no thumbnail\n", "text/plain; charset=utf-8", head)
        self._send(200, jpg, "image/jpeg", head, {"Cache-Control": "max-age=3600"})

    def _video(self, tail: str, head: bool) -> None:
        """GET /video/<row>/<id>: the file of one of the cache's own videos, nothing else under the root."""
        srv = self.server
        row, _, vid = tail.partition("/")
        known = (srv.searcher is not None and row.isdigit() and int(row) < len(srv.searcher.index)
                 and str(srv.searcher.reader.ids[int(row)]) == vid)
        path = safe_path(srv.root, vid) if known else None
        if path is None:
            return self._send(404, b"not a video of this cache\n", "text/plain; charset=utf-8", head)
        size = os.path.getsize(path)
        ctype = VIDEO_TYPES.get(os.path.splitext(path)[1].lower(), "application/octet-stream")
        try:
            span = parse_range(self.headers.get("Range"), size)
        except ValueError:
            return self._send(416, b"", ctype, head, {"Content-Range": f"bytes */{size}"})
        first, last = span if span else (0, size - 1)
        self.send_response(206 if span else 200)
        extra = {"Content-Range": f"bytes {first}-{last}/{size}"} if span else {}
        for k, v in {**HEADERS, "Content-Type": ctype, "Accept-Ranges": "bytes",
                     "Content-Length": str(max(0, last - first + 1)), **extra}.items():
            self.send_header(k, v)
        self.end_headers()
        if head:
            return
        with open(path, "rb") as f:
            f.seek(first)
            left = last - first + 1
            while left > 0:
                data = f.read(min(CHUNK, left))
                if not data:
                    break
                self.wfile.write(data)
                left -= len(data)
