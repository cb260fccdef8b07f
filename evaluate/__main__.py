"""`python -m evaluate CACHE.h5 --runs RUNS --out REPORT`: write the HTML/Markdown/JSON evaluation report."""
import argparse
import os
import sys
import warnings
from typing import List, Optional

from clipvid.errors import EXIT_OK, EXIT_PARTIAL, DataError, UsageError, exit_status
from clipvid.helptext import add_examples
from clipvid.options import Parser, add_clip_model, add_device, add_quiet, check_counts
from clipvid.paths import writable_folder
from clipvid.resources import TMP_DIR_HELP, use_tmp_dir


def _parser() -> argparse.ArgumentParser:
    ap = Parser(
        prog="python -m evaluate",
        description="Evaluate every head in a runs folder on a clipvid cache and write report.html "
                    "(self-contained), report.md, metrics.json and one PNG per figure.",
        epilog="Exit status: 0 ok; 1 report written but some run folders were skipped (listed in it) or nothing "
               "was scored; "
               "2 bad arguments or an unwritable --out; 3 missing or unusable cache or runs folder.")
    ap.add_argument("cache", nargs="+",
                    help="the HDF5 cache to score on: the heads' own (their test split) or another one (cross-"
                         "dataset: every labelled video of a class the head knows); several caches of the same "
                         "videos under different backbones, each with its --runs: one comparison report")
    ap.add_argument("--runs", required=True, nargs="+",
                    help="a folder of run folders (any depth), or one head's folder; one per cache")
    ap.add_argument("--out", required=True, help="folder to write the report into (created if needed)")
    add_device(ap, "CLIP and the heads")
    ap.add_argument("--tmp-dir", help=TMP_DIR_HELP)
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the 95%% intervals (default 1000)")
    add_clip_model(ap)   # for encoding captions and class names
    ap.add_argument("--shots", default="auto", metavar="auto|none|K[,K...]",
                    help="few-shot curves: retrain the runs' heads and the linear probe on K labelled training "
                         "videos per class and score them on the test split (default auto: K = 1,2,4,8,16 up to "
                         "the smallest class's training videos, on when that class has at least 2; a K above it "
                         "is skipped with a note; none: off)")
    ap.add_argument("--shot-draws", type=int, default=3, metavar="D",
                    help="few-shot draws per K (seeds 0..D-1: the videos and the initial weights; default 3)")
    add_quiet(ap)
    return add_examples(ap, ["python -m evaluate cache.h5 --runs runs/ --out report/",
                             "python -m evaluate cache.h5 --runs runs/ --out report/ --shots 1,2,4,8,16 --shot-draws 5",
                             "python -m evaluate cache.h5 --runs runs_open/ --out report_open/ --resamples 200 "
                             "--shots none",
                             "python -m evaluate vitb32.h5 siglip2.h5 --runs runs_vitb32/ runs_siglip2/ --out compare/"])


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    return exit_status(lambda: _evaluate(args), out=args.out, interrupted=lambda: (
        f"interrupted: no report finished in {args.out}; run the same command again"))


def _evaluate(args: argparse.Namespace) -> int:
    check_counts(args, "resamples", "shot_draws")
    from evaluate.fewshot import parse_shots
    try:
        shots = parse_shots(args.shots)
    except ValueError as exc:
        raise UsageError(f"--shots: {exc}")
    if len(args.runs) != len(args.cache):
        raise UsageError(f"--runs: give one runs folder per cache ({len(args.cache)} caches, {len(args.runs)} "
                         "runs folders)")
    for runs in args.runs:
        if not os.path.isdir(runs):
            raise DataError(runs, "no such runs folder")
    writable_folder(args.out)
    from clipvid.device import announce, resolve
    try:
        resolve(args.device)
    except ValueError as exc:
        raise UsageError(f"--device: {exc}")
    try:
        use_tmp_dir(args.tmp_dir)
    except ValueError as exc:
        raise UsageError(f"--tmp-dir: {exc}")
    if len(args.cache) > 1:
        return _compare(args)
    args.cache, args.runs = args.cache[0], args.runs[0]
    from cache.reader import open_cache
    from evaluate.collect import collect
    from evaluate.report import write_report
    with open_cache(args.cache) as reader, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # library chatter (t-SNE, sklearn) would bury the summary
        announce(args.device, "train", "evaluate", args.quiet)
        data, figures = collect(reader, args.runs, args.device, args.resamples, args.clip_model,
                                progress=not args.quiet, shots=shots, draws=args.shot_draws)
    scored = sum(int(h.get("test_videos") or 0) for h in data["heads"])
    written = write_report(args.out, data, figures)
    if data["heads"] and not scored:  # heads loaded, yet none scored a video: one line, not "N heads evaluated"
        print(f"error: {args.cache}: nothing scored: no labelled video here is of a class the heads know (or in "
              f"their test split); report in {args.out}", file=sys.stderr)
        return EXIT_PARTIAL
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = compare(args.cache, args.runs, args.device, args.resamples, progress=not args.quiet)
    written = write_comparison(args.out, data)
    for w in data["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    print(f"{len(data['backbones'])} backbones x {len(data['heads'])} heads compared; wrote {len(written)} files "
          f"to {args.out}")
    print(os.path.join(args.out, "report.html"))
    return EXIT_PARTIAL if any("skipped run" in w for w in data["warnings"]) else EXIT_OK

if __name__ == "__main__":
    sys.exit(main())
