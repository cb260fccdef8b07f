"""`python -m evaluate.search CACHE "text" | --queries FILE | --serve`: rank cached videos for free text."""
import argparse
import csv
import sys
from typing import List, Optional

from clipvid.errors import EXIT_OK, DataError, UsageError, exit_status
from clipvid.helptext import add_examples
from clipvid.options import Parser, add_clip_model, add_device, add_quiet, check_counts
from clipvid.paths import writable_file

CSV_COLUMNS = ["query_line", "query", "rank", "id", "score", "time", "label", "caption"]

EXAMPLES = ['python -m evaluate.search cache.h5 "a ball rolling to the left" --top 5',
            "python -m evaluate.search cache.h5 --queries queries.txt --out hits.csv --run runs/transformer-f100-e60-lr0.001/seed0",
            "python -m evaluate.search cache.h5 --serve --port 8765      # then open http://127.0.0.1:8765/"]
EPILOG = ("Exit status: 0 ok; 2 bad arguments, an unwritable --out/--html or a port that is taken; 3 missing or "
          "unusable cache, run, queries file or CLIP weights.")


def _parser() -> argparse.ArgumentParser:
    ap = Parser(prog="python -m evaluate.search",
                                 description="Rank the videos of a clipvid cache for free text: one query, a file "
                                             "of queries (CSV out), or a search page in the browser. Ranks the "
                                             "cache's persistent video index (or a head's saved video "
                                             "embeddings) and reads only the frames of the videos it shows.",
                                 epilog=EPILOG)
    ap.add_argument("cache", help="the HDF5 cache to search")
    ap.add_argument("query", nargs="?", default=None, help="a sentence, e.g. \"a person playing the violin\"")
    ap.add_argument("--queries", default=None, metavar="FILE",
                    help="answer every line of FILE (UTF-8, one query per line, blank lines skipped) and "
                         "write a CSV of hits")
    ap.add_argument("--out", default="-", help="where --queries writes its CSV (default: - for stdout)")
    ap.add_argument("--serve", action="store_true", help="start a local search page instead of answering once")
    ap.add_argument("--host", default="127.0.0.1", help="address --serve listens on (default 127.0.0.1: this "
                                                        "machine only)")
    ap.add_argument("--port", type=int, default=8765, help="port --serve listens on (default 8765; 0 picks a free one)")
    ap.add_argument("--run", default=None, help="a run folder RUNS/<head>: rank that head's saved video embeddings "
                                                "(default: the cache's mean-pooled CLIP video index)")
    ap.add_argument("--top", type=int, default=10, help="how many videos to list per query (default 10)")
    add_clip_model(ap)   # for the query; its weights must match the cache's
    ap.add_argument("--html", default=None, help="with one query: also write a results page with a thumbnail of "
                                                 "each best moment")
    ap.add_argument("--root", default=None, help="folder the video ids are relative to, for thumbnails and videos "
                                                 "(default: the cache's source_root, else the cache's folder)")
    add_device(ap, "CLIP and the head")
    add_quiet(ap)
    return add_examples(ap, EXAMPLES)


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


def _check_args(args: argparse.Namespace) -> None:
    modes = [m for m, on in (("a query", args.query is not None), ("--queries", args.queries),
                             ("--serve", args.serve)) if on]
    if len(modes) != 1:
        raise UsageError("usage: give one query, --queries FILE or --serve"
                         + (f" (not {' and '.join(modes)})" if modes else ""))
    check_counts(args, "top")
    if args.html and args.query is None:
        raise UsageError("--html goes with one query")
    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    for out in (args.out if args.queries and args.out != "-" else None, args.html):
        if out:
            writable_file(out)


def read_queries(path: str) -> List[tuple]:
    """[(line number, query)] of a queries file; raises OSError / UnicodeDecodeError."""
    from evaluate.searcher import normalise_query
    with open(path, encoding="utf-8") as f:
        lines = [(i, normalise_query(line)) for i, line in enumerate(f, 1)]
    return [(i, q) for i, q in lines if q]


def write_hits_csv(out, answered: list) -> None:
    """CSV_COLUMNS, one row per hit: [(line, query, hits)] -> rows via the csv module (any text survives)."""
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for line, query, hits in answered:
        for h in hits:
            w.writerow([line, query, h.rank, h.id, f"{h.score:.6f}", f"{h.time:.3f}", h.label, h.caption])


def _answer_file(searcher, args, queries: List[tuple], progress: bool) -> int:
    from clipvid.progress import progress as progress_display
    emb = searcher.encode([q for _, q in queries], progress=progress)                  # [Q, D]
    answered = [(line, q, searcher.hits(e, args.top))
                for (line, q), e in progress_display(list(zip(queries, emb)), desc="searching", unit="query",
                                                     quiet=not progress)]
    if args.out == "-":
        write_hits_csv(sys.stdout, answered)
    else:
        with open(args.out, "w", encoding="utf-8", newline="") as f:
            write_hits_csv(f, answered)
    print(f"{len(queries)} queries, {sum(len(h) for *_, h in answered)} hits"
          + ("" if args.out == "-" else f"; wrote {args.out}"), file=sys.stderr)
    return EXIT_OK


def _answer_one(searcher, args, query: str, root: str, banner: str, progress: bool) -> int:
    hits = searcher.query(query, args.top)
    print(f"{'rank':>4}  {'score':>7}  {'time':>8}  id")
    for hit in hits:
        print(f"{hit.rank:>4}  {hit.score:7.4f}  {hit.time:7.2f}s  {hit.id}")
    if args.html:
        from evaluate.search_page import render_page
        from evaluate.thumbs import thumbnails
        page = render_page(query, hits, thumbnails(hits, root, progress), searcher.source, banner)
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(page)
        print(f"wrote {args.html}", file=sys.stderr)
    return EXIT_OK


def _serve(reader, args, root: str, banner: str, progress: bool) -> int:
    from evaluate.searcher import open_searcher
    from evaluate.serve import SearchServer
    try:
        server = SearchServer(args.host, args.port, root, args.top, banner)
    except OSError as exc:
        raise UsageError(f"{args.host}:{args.port}: cannot listen ({exc.strerror or exc})")
    print(f"serving {server.url} (Ctrl-C to stop); videos from {root}", flush=True)
    server.start_loading(lambda stage: open_searcher(reader, args.run, args.clip_model, args.device, packed=True,
                                                     progress=progress, note=_note, stage=stage))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
    if server.failure is not None:
        raise _as_command_error(server.failure, args)
    return EXIT_OK


def _as_command_error(exc: BaseException, args: argparse.Namespace) -> BaseException:
    """What opening the searcher raised, as the error the one mapping reports (a CLIP that does not match
    the cache is the cache's problem; any other ValueError is --device's)."""
    from evaluate.clip_text import ClipMismatch
    if isinstance(exc, (DataError, UsageError)):
        return exc
    if isinstance(exc, ClipMismatch):
        return DataError(args.cache, str(exc))
    if isinstance(exc, ValueError):
        return UsageError(f"--device: {exc}")
    return exc


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    return exit_status(lambda: _search(args), interrupted=lambda: "interrupted: nothing more was written")


def _search(args: argparse.Namespace) -> int:
    _check_args(args)
    from evaluate.searcher import normalise_query
    query = normalise_query(args.query) if args.query is not None else None
    if query == "":
        raise UsageError("query: the query is empty; give a sentence to search for")
    queries = []
    if args.queries:  # read first: a bad file fails before anything slow loads
        try:
            queries = read_queries(args.queries)
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(args.queries, f"cannot read the queries ({getattr(exc, 'strerror', None) or exc})")
        if not queries:
            raise DataError(args.queries, "no queries in the file (one per line)")
    from cache.reader import open_cache
    from evaluate.search_page import RANDOM_BANNER
    from evaluate.searcher import open_searcher
    from evaluate.thumbs import default_root
    progress = not args.quiet
    with open_cache(args.cache) as reader:
        if reader.num_videos == 0:
            raise DataError(args.cache, "the cache has no videos to search")
        root = args.root or default_root(args.cache, reader.settings.get("source_root"))
        banner = RANDOM_BANNER if reader.random_weights else ""
        from clipvid.device import announce
        if args.serve:
            try:
                announce(args.device, "embed", "search", args.quiet)
            except ValueError as exc:
                raise UsageError(f"--device: {exc}")
            return _serve(reader, args, root, banner, progress)
        try:
            # One query scans the stored index once; many queries pay for packing it first.
            searcher = open_searcher(reader, args.run, args.clip_model, args.device,
                                     packed=args.queries is not None, progress=progress, note=_note)
        except ValueError as exc:   # a CLIP that does not fit the cache, --device cuda without a GPU
            raise _as_command_error(exc, args)
        announce(args.device, "embed", "search", args.quiet)
        if reader.random_weights:
            print("!!! RANDOM CLIP WEIGHTS: scores carry no meaning !!!", file=sys.stderr)
        if args.queries:
            return _answer_file(searcher, args, queries, progress)
        return _answer_one(searcher, args, query, root, banner, progress)

if __name__ == "__main__":
    sys.exit(main())
