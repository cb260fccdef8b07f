"""`python -m evaluate.search CACHE.h5 "free text"`: rank cached videos for a sentence, with best moments."""
import argparse
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional

import numpy as np

from cache.errors import CacheError, EXIT_DATA, EXIT_OK, EXIT_USAGE
from evaluate import metrics as M

if TYPE_CHECKING:  # the reader is imported lazily so --help stays fast
    from cache.reader import CacheReader


@dataclass
class Hit:
    """One ranked video: cache row, id, cosine score and the timestamp of its best-matching frame."""
    rank: int
    row: int
    id: str
    score: float
    time: float
    label: str = ""
    caption: str = ""


def rank(query: np.ndarray, video_emb: np.ndarray, top: int) -> np.ndarray:
    """Rows of the `top` videos with the highest cosine to query [D] (video_emb [V, D]), best first."""
    from evaluate.index import VideoIndex
    return VideoIndex(video_emb).top(query, top)


def best_moments(reader: "CacheReader", rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Per row, the timestamp (s) of the frame whose embedding has the highest cosine with the query."""
    emb = M.l2_normalise(reader.emb(rows))                              # [k, N, D]
    best = (emb @ M.l2_normalise(query)).argmax(1)                      # [k]
    times = reader.times()                                              # [V, N]
    return times[rows, best] if len(rows) else np.zeros(0, np.float32)


def search(reader: "CacheReader", query_emb: np.ndarray, video_emb: np.ndarray, top: int) -> List[Hit]:
    """The ranked hits for one query embedding [D] over video embeddings [V, D]."""
    rows = rank(query_emb, video_emb, top)
    scores = M.l2_normalise(video_emb[rows]) @ M.l2_normalise(query_emb)
    times = best_moments(reader, rows, query_emb)
    names = reader.class_names
    return [Hit(i + 1, int(r), str(reader.ids[r]), float(s), float(t),
                names[reader.labels[r]] if 0 <= reader.labels[r] < len(names) else "", str(reader.captions[r]))
            for i, (r, s, t) in enumerate(zip(rows, scores, times))]


def render_page(query: str, hits: List[Hit], thumbs: List[Optional[bytes]], source: str, banner: str = "") -> str:
    """A self-contained results page; every user string is escaped."""
    from evaluate.html import CSS, data_uri, esc
    rows = []
    for hit, jpg in zip(hits, thumbs):
        img = (f'<img alt="{esc(hit.id)} at {hit.time:.2f}s" src="{data_uri(jpg, "image/jpeg")}" width="320">'
               if jpg else '<span class="note">no thumbnail (video file not found or unreadable)</span>')
        rows.append(f'<tr><td class="num">{hit.rank}</td><td>{img}</td><td><code>{esc(hit.id)}</code>'
                    f'<br>{esc(hit.label)}<br><span class="note">{esc(hit.caption)}</span></td>'
                    f'<td class="num">{hit.score:.4f}</td><td class="num">{hit.time:.2f} s</td></tr>')
    top = f'<div class="banner" role="alert">{esc(banner)}</div>' if banner else ""
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>search: {esc(query)}</title><style>{CSS}</style></head><body>{top}<main>"
            f"<h1>Search: {esc(query)}</h1><p class=\"note\">ranked by cosine over {esc(source)}; "
            "the thumbnail is the frame that matches the query best</p>"
            "<table><thead><tr><th>#</th><th>best moment</th><th>video</th><th>score</th><th>time</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></main></body></html>\n")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m evaluate.search",
                                 description="Rank the videos of a clipvid cache for a free-text query.",
                                 epilog="Exit status: 0 ok; 2 bad arguments; 3 unusable cache, run or CLIP weights.")
    ap.add_argument("cache", help="the HDF5 cache to search")
    ap.add_argument("query", help="a sentence, e.g. \"a person playing the violin\"")
    ap.add_argument("--run", default=None, help="a run folder RUNS/<head>: rank that head's video embeddings "
                                                "(default: mean-pooled CLIP frame embeddings)")
    ap.add_argument("--top", type=int, default=10, help="how many videos to list (default 10)")
    ap.add_argument("--clip-model", default=None, help="CLIP for the query (default: the cache's own model; "
                                                       "its weights must match the cache)")
    ap.add_argument("--html", default=None, help="also write a results page with a thumbnail of each best moment")
    ap.add_argument("--root", default=None, help="folder the video ids are relative to, for thumbnails "
                                                 "(default: the cache's source_root, else the cache's folder)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    return ap


def _fail(path: str, reason: str, status: int) -> int:
    print(f"error: {path}: {reason}", file=sys.stderr)
    return status


def _video_embeddings(reader: "CacheReader", run: Optional[str], device: str, progress: bool) -> tuple:
    from evaluate.video_emb import head_embeddings, mean_pooled
    if run is None:
        return mean_pooled(reader, progress), "mean-pooled CLIP frame embeddings"
    from train.api import load_method
    method = load_method(run, reader=reader, device=device)
    return head_embeddings(method, reader, progress), f"the {method.name} head's video embeddings"


def _thumbnails(hits: List[Hit], root: str, progress: bool) -> List[Optional[bytes]]:
    from cache.progress import progress as progress_display
    from evaluate.thumbs import find_video, grab_frame
    out = []
    for hit in progress_display(hits, desc="thumbnails", unit="video", quiet=not progress):
        path = find_video(root, hit.id)
        out.append(grab_frame(path, hit.time) if path else None)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    query = " ".join(args.query.split())
    if not query:
        return _fail("query", "the query is empty; give a sentence to search for", EXIT_USAGE)
    if args.top < 1:
        return _fail("--top", "must be at least 1", EXIT_USAGE)
    from cache.reader import open_cache
    from evaluate.clip_text import ClipMismatch, encode, load_text_encoder
    from train.checkpoint import CheckpointError
    progress = not args.quiet
    try:
        with open_cache(args.cache) as reader:
            if reader.num_videos == 0:
                return _fail(args.cache, "the cache has no videos to search", EXIT_DATA)
            try:
                clip_ = load_text_encoder(reader, args.clip_model, args.device)
            except ClipMismatch as exc:
                return _fail(args.cache, str(exc), EXIT_DATA)
            except ValueError as exc:  # --device cuda without a GPU
                return _fail("--device", str(exc), EXIT_USAGE)
            query_emb = encode(clip_, [query])[0]                        # [D]
            try:
                video_emb, source = _video_embeddings(reader, args.run, args.device, progress)
            except CheckpointError as exc:
                return _fail(exc.path, exc.reason, EXIT_DATA)
            hits = search(reader, query_emb, video_emb, args.top)
            random_weights = reader.random_weights
            source_root = reader.settings.get("source_root")
    except CacheError as exc:
        return _fail(exc.path, exc.reason, EXIT_DATA)
    if random_weights:
        print("!!! RANDOM CLIP WEIGHTS: scores carry no meaning !!!", file=sys.stderr)
    print(f"{'rank':>4}  {'score':>7}  {'time':>8}  id")
    for hit in hits:
        print(f"{hit.rank:>4}  {hit.score:7.4f}  {hit.time:7.2f}s  {hit.id}")
    if args.html:
        from evaluate.thumbs import default_root
        root = args.root or default_root(args.cache, source_root)
        banner = "RANDOM CLIP WEIGHTS: these scores carry no learned meaning." if random_weights else ""
        page = render_page(query, hits, _thumbnails(hits, root, progress), source, banner)
        try:
            with open(args.html, "w", encoding="utf-8") as f:
                f.write(page)
        except OSError as exc:
            return _fail(args.html, f"cannot write ({exc.strerror or exc})", EXIT_DATA)
        print(f"wrote {args.html}", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
