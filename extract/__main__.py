"""`python -m extract SOURCE --out CACHE.h5`: sample, embed and cache every video of SOURCE."""
import argparse
import os
import signal
import sys
from typing import Dict

from clipvid.errors import EXIT_OK, EXIT_PARTIAL, CacheError, UsageError, exit_status
from clipvid.helptext import add_examples
from clipvid.options import Parser, add_clip_model, add_device, add_quiet, add_video_timeout, add_workers, check_counts
from clipvid.paths import require_input, writable_file

DEFAULT_MODEL = "ViT-B/32"
EPILOG = """exit status: 0 every video is cached; 1 some videos failed (listed, and kept in
/failures of the cache); 2 usage error (nothing done); 3 the source or the cache file is missing or unusable,
or the model's weights or tokenizer cannot be had (not on this machine and not downloadable).

weights: a named model's weights are downloaded on first use (OpenAI's into ~/.cache/clip, open_clip's into
the Hugging Face cache); CLIPVID_OFFLINE=1 never tries the network."""


def parse_args(argv=None) -> argparse.Namespace:
    ap = Parser(
        prog="python -m extract", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Sample N frames per video with FFmpeg (PyAV), embed them with CLIP on a Dask cluster, "
                    "and cache them in HDF5. Running it again resumes.")
    ap.add_argument("source", help="folder with one sub-folder per class, a path[,label,split,caption] "
                                   "CSV (relative paths are resolved against the CSV's own folder), "
                                   "or a Kinetics annotation CSV")
    ap.add_argument("--out", help="cache file to create or extend (.h5); missing folders are made")
    ap.add_argument("--out-dir", help="folder for one cache per --clip-model, each named by its backbone "
                                      "(e.g. random_tiny.h5); the videos are decoded once for all of them")
    add_clip_model(ap, DEFAULT_MODEL, several=True)
    ap.add_argument("--frames", type=int, default=100, help="frames sampled per video, N (default 100)")
    add_workers(ap)
    ap.add_argument("--threads-per-worker", type=int,
                    help="tasks at once per worker (default 1: PyAV holds the GIL while it decodes)")
    ap.add_argument("--scheduler", help="address of an existing Dask scheduler, e.g. tcp://host:8786")
    ap.add_argument("--torch-threads", type=int,
                    help="CPU threads each worker's CLIP uses (default: the host's cores / its workers)")
    add_device(ap, "CLIP")
    ap.add_argument("--batch-size", type=int, default=100, help="frames per CLIP forward pass (default 100)")
    ap.add_argument("--videos", help="folder of downloaded clips, for a Kinetics CSV (default: the CSV's folder)")
    add_video_timeout(ap)
    ap.add_argument("--retry-failed", action="store_true", help="try again the videos recorded as failed")
    ap.add_argument("--replace-changed", action="store_true",
                    help="re-extract cached videos whose file changed (default: refuse, naming the first one)")
    ap.add_argument("--allow-new-root", action="store_true",
                    help="add videos of another source folder to an existing cache (default: refuse)")
    add_quiet(ap)
    add_examples(ap, ["python -m extract videos/ --out cache.h5 --clip-model ViT-B/32",
                      "python -m extract list.csv --out runs/cache.h5 --frames 32 --quiet",
                      "python -m extract kinetics400_val.csv --videos clips/ --out k400.h5 --device cuda",
                      "python -m extract videos/ --out siglip2.h5 --clip-model open_clip:ViT-B-16-SigLIP2/webli",
                      "python -m extract videos/ --out-dir caches/ --clip-model ViT-B/32 "
                      "--clip-model open_clip:ViT-B-16/laion2b_s34b_b88k"])
    return ap.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Mistakes found before any work starts (and before torch is imported)."""
    check_counts(args, "frames", "workers", "threads_per_worker", "batch_size", "torch_threads")
    from clipvid.device import parse
    try:
        parse(args.device)
    except ValueError as exc:
        raise UsageError(f"--device: {exc}")
    require_input(args.source)
    for out in outputs(args).values():
        writable_file(out)   # missing folders are made (after every other check)
    if not args.scheduler:   # a scheduler's workers decide on their own machines
        from clipvid.device import resolve
        try:
            resolve(args.device, "embed", detail=False)
        except ValueError as exc:
            raise UsageError(f"--device: {exc}")


def outputs(args: argparse.Namespace) -> Dict[str, str]:
    """{backbone spec: its cache file}: --out for one backbone, or one file per backbone in --out-dir."""
    from extract.backbones import cache_name
    specs = args.clip_model or [DEFAULT_MODEL]
    if len(set(specs)) < len(specs):
        raise UsageError("--clip-model: a backbone is named twice")
    if (args.out is None) == (args.out_dir is None):
        raise UsageError("give --out CACHE.h5 (one backbone) or --out-dir DIR (one cache per backbone), not both"
                         if args.out else "--out CACHE.h5 or --out-dir DIR is required")
    if args.out is not None and len(specs) > 1:
        raise UsageError(f"--clip-model is given {len(specs)} times: use --out-dir DIR (one cache per backbone)")
    return {specs[0]: args.out} if args.out else {s: os.path.join(args.out_dir, cache_name(s)) for s in specs}


def _term_as_interrupt(*_):
    raise KeyboardInterrupt


def _cached_count(out: str) -> int:
    """Videos the cache holds after an interrupted run (0 when it was never written)."""
    from cache.reader import open_cache
    try:
        with open_cache(out) as r:
            return r.num_videos
    except (CacheError, OSError):
        return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    return exit_status(lambda: _extract(args), out=args.out or args.out_dir, interrupted=lambda: (
        "interrupted: " + ", ".join(f"{_cached_count(out)} videos kept in {out}" for out in outputs(args).values())
        + "; run the same command to resume"))


def _extract(args: argparse.Namespace) -> int:
    check_args(args)
    from extract.weights import check_available
    from extract.sources import load_source
    outs = outputs(args)
    for spec in outs:
        check_available(spec)   # downloads a named model's weights on first use
    source = load_source(args.source, args.videos)
    for w in source.warnings:
        print(f"warning: {w}", file=sys.stderr)
    from extract.pipeline import Options, run_many
    for out in outs.values():
        try:
            os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{out}: cannot create its folder ({exc.strerror or exc})")
    opts = Options(clip_model=next(iter(outs)), frames=args.frames, workers=args.workers,
                   threads_per_worker=args.threads_per_worker, scheduler=args.scheduler, device=args.device,
                   batch_size=args.batch_size, video_timeout=args.video_timeout, retry_failed=args.retry_failed,
                   progress=not args.quiet, torch_threads=args.torch_threads,
                   replace_changed=args.replace_changed, allow_new_root=args.allow_new_root)
    signal.signal(signal.SIGTERM, _term_as_interrupt)
    summaries = run_many(source, outs, opts)
    if any("random:" in spec for spec in outs):
        print("!!! RANDOM CLIP WEIGHTS: these embeddings carry no learned meaning !!!", file=sys.stderr)
    partial = [_report(source, out, summaries[spec]) for spec, out in outs.items()]
    return EXIT_PARTIAL if any(partial) else EXIT_OK


def _report(source, out: str, summary) -> bool:
    """Print one cache's failures and summary line; True when some videos failed."""
    paths = {item.id: item.path for item in source.items} if summary.failed else {}
    for vid, why in summary.failed.items():
        looked = f" (looked for {os.path.abspath(paths[vid])})" if why == "file not found" and vid in paths else ""
        print(f"failed: {vid}: {why}{looked}", file=sys.stderr)
    rate = summary.cached / summary.seconds if summary.seconds else 0.0
    ways = ", ".join(f"{k} {v}" for k, v in sorted(summary.strategies.items())) or "none"
    print(f"{out}: cached {summary.cached}"
          + (f" ({summary.replaced} changed files re-extracted)" if summary.replaced else "")
          + f", skipped {summary.skipped} already cached, "
          f"failed {len(summary.failed)}"
          + (f" (+{len(summary.still_failed)} failed earlier; --retry-failed retries)" if summary.still_failed else "")
          + f"; {summary.seconds:.1f} s, {rate:.2f} videos/s; sampling: {ways}")
    if summary.deferred:
        print(f"{out}: not embedded: {len(summary.deferred)} videos, for lack of GPU memory "
              f"({next(iter(summary.deferred.values()))}); not recorded as failed: run the same command "
              "again, with fewer --workers or a smaller --batch-size", file=sys.stderr)
    return bool(summary.failed or summary.still_failed or summary.deferred)

if __name__ == "__main__":
    sys.exit(main())
