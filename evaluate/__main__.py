"""`python -m evaluate CACHE.h5 --runs RUNS --out REPORT`: write the HTML/Markdown/JSON evaluation report."""
import argparse
import os
import sys
import warnings
from typing import List, Optional

from cache.helptext import add_examples
from cache.errors import CacheError, EXIT_DATA, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m evaluate",
        description="Evaluate every head in a runs folder on a clipvid cache and write report.html "
                    "(self-contained), report.md, metrics.json and one PNG per figure.",
        epilog="Exit status: 0 ok; 1 report written but some run folders were skipped (listed in it) or nothing "
               "was scored; "
               "2 bad arguments; 3 unusable cache or runs folder.")
    ap.add_argument("cache", nargs="+",
                    help="the HDF5 cache to score on: the heads' own (their test split) or another one (cross-"
                         "dataset: every labelled video of a class the head knows); several caches of the same "
                         "videos under different backbones, each with its --runs: one comparison report")
    ap.add_argument("--runs", required=True, nargs="+",
                    help="a folder of run folders (any depth), or one head's folder; one per cache")
    ap.add_argument("--out", required=True, help="folder to write the report into (created if needed)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the 95%% intervals (default 1000)")
    ap.add_argument("--clip-model", default=None,
                    help="CLIP for encoding captions (default: the model recorded in the cache)")
    ap.add_argument("--shots", default="auto", metavar="auto|none|K[,K...]",
                    help="few-shot curves: retrain the runs' heads and the linear probe on K labelled training "
                         "videos per class and score them on the test split (default auto: K = 1,2,4,8,16 up to "
                         "the smallest class's training videos, on when that class has at least 2; a K above it "
                         "is skipped with a note; none: off)")
    ap.add_argument("--shot-draws", type=int, default=3, metavar="D",
                    help="few-shot draws per K (seeds 0..D-1: the videos and the initial weights; default 3)")
    ap.add_argument("--quiet", action="store_true", help="no progress display")
    return add_examples(ap, ["python -m evaluate cache.h5 --runs runs/ --out report/",
                             "python -m evaluate cache.h5 --runs runs/ --out report/ --shots 1,2,4,8,16 --shot-draws 5",
                             "python -m evaluate cache.h5 --runs runs_open/ --out report_open/ --resamples 200 "
                             "--shots none",
                             "python -m evaluate vitb32.h5 siglip2.h5 --runs runs_vitb32/ runs_siglip2/ --out compare/"])


def _fail(path: str, reason: str, status: int) -> int:
    print(f"error: {path}: {reason}", file=sys.stderr)
    return status


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _evaluate(args)
    except KeyboardInterrupt:
        print(f"interrupted: no report finished in {args.out}; run the same command again", file=sys.stderr)
        return EXIT_INTERRUPTED


def _evaluate(args: argparse.Namespace) -> int:
    if args.resamples < 1:
        return _fail("--resamples", "must be at least 1", EXIT_USAGE)
    if args.shot_draws < 1:
        return _fail("--shot-draws", "must be at least 1", EXIT_USAGE)
    from evaluate.fewshot import parse_shots
    try:
        shots = parse_shots(args.shots)
    except ValueError as exc:
        return _fail("--shots", str(exc), EXIT_USAGE)
    if len(args.runs) != len(args.cache):
        return _fail("--runs", f"give one runs folder per cache ({len(args.cache)} caches, {len(args.runs)} "
                               "runs folders)", EXIT_USAGE)
    for runs in args.runs:
        if not os.path.isdir(runs):
            return _fail(runs, "no such runs folder", EXIT_DATA)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        return _fail(args.out, "exists and is not a folder", EXIT_USAGE)
    if len(args.cache) > 1:
        return _compare(args)
    args.cache, args.runs = args.cache[0], args.runs[0]
    from cache.reader import open_cache
    from evaluate.collect import collect
    from evaluate.report import write_report
    from train.device import resolve_device
    try:
        resolve_device(args.device)
    except ValueError as exc:
        return _fail("--device", str(exc), EXIT_USAGE)
    try:
        with open_cache(args.cache) as reader, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # library chatter (t-SNE, sklearn) would bury the summary
            data, figures = collect(reader, args.runs, args.device, args.resamples, args.clip_model,
                                    progress=not args.quiet, shots=shots, draws=args.shot_draws)
    except CacheError as exc:
        return _fail(exc.path, exc.reason, EXIT_DATA)
    scored = sum(int(h.get("test_videos") or 0) for h in data["heads"])
    try:
        written = write_report(args.out, data, figures)
    except OSError as exc:
        return _fail(args.out, f"cannot write the report ({exc.strerror or exc})", EXIT_DATA)
    if data["heads"] and not scored:  # heads loaded, yet none scored a video: one line, not "N heads evaluated"
        return _fail(args.cache, "nothing scored: no labelled video here is of a class the heads know (or in "
                                 f"their test split); report in {args.out}", EXIT_PARTIAL)
    for w in data["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    best = data.get("best_head")
    print(f"{len(data['heads'])} heads evaluated; best: {best or '-'}; wrote {len(written)} files to {args.out}")
    print(os.path.join(args.out, "report.html"))
    return EXIT_PARTIAL if any(w.startswith("skipped run") for w in data["warnings"]) else EXIT_OK


def _compare(args: argparse.Namespace) -> int:
    """Several caches (one per backbone) and their runs: one comparison report."""
    from evaluate.compare import compare
    from evaluate.compare_report import write_comparison
    from train.device import resolve_device
    try:
        resolve_device(args.device)
    except ValueError as exc:
        return _fail("--device", str(exc), EXIT_USAGE)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = compare(args.cache, args.runs, args.device, args.resamples, progress=not args.quiet)
    except CacheError as exc:
        return _fail(exc.path, exc.reason, EXIT_DATA)
    try:
        written = write_comparison(args.out, data)
    except OSError as exc:
        return _fail(args.out, f"cannot write the report ({exc.strerror or exc})", EXIT_DATA)
    for w in data["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    print(f"{len(data['backbones'])} backbones x {len(data['heads'])} heads compared; wrote {len(written)} files "
          f"to {args.out}")
    print(os.path.join(args.out, "report.html"))
    return EXIT_PARTIAL if any(w.startswith("skipped run") or ": skipped run" in w for w in data["warnings"]) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
