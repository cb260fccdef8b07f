"""`python -m extract SOURCE --out CACHE.h5`: sample, embed and cache every video of SOURCE."""
import argparse
import os
import signal
import sys

from cache.helptext import add_examples
from cache.errors import CacheError, EXIT_DATA, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE

EPILOG = """exit status: 0 every video is cached; 1 some videos failed (listed, and kept in
/failures of the cache); 2 usage error (nothing done); 3 the cache file cannot be used or written, or the
model's weights or tokenizer cannot be had (not on this machine and not downloadable).

weights: a named model's weights are downloaded on first use (OpenAI's into ~/.cache/clip, open_clip's into
the Hugging Face cache); CLIPVID_OFFLINE=1 never tries the network."""


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m extract", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Sample N frames per video with ffmpeg, embed them with CLIP on a Dask cluster, "
                    "and cache them in HDF5. Running it again resumes.")
    ap.add_argument("source", help="folder with one sub-folder per class, a path,label[,split,caption] "
                                   "CSV (relative paths are resolved against the CSV's own folder), "
                                   "or a Kinetics annotation CSV")
    ap.add_argument("--out", required=True, help="cache file to create or extend (.h5); missing folders are made")
    ap.add_argument("--clip-model", default="ViT-B/32",
                    help="backbone: an OpenAI CLIP name, a weights file, random:<arch>, open_clip:ARCH/PRETRAINED, "
                         "open_clip:ARCH@/path/to/checkpoint or random:open_clip:ARCH (default ViT-B/32)")
    ap.add_argument("--frames", type=int, default=100, help="frames sampled per video, N (default 100)")
    ap.add_argument("--workers", type=int, help="Dask worker processes (default: one per core up to 8; with GPUs, one per 2 cores, up to 8 per GPU and one per 3 GiB of its memory)")
    ap.add_argument("--threads-per-worker", type=int, help="tasks at once per worker (default 1 on CPU; with GPUs, the cores / the workers, at least 2)")
    ap.add_argument("--scheduler", help="address of an existing Dask scheduler, e.g. tcp://host:8786")
    ap.add_argument("--torch-threads", type=int,
                    help="CPU threads each worker's CLIP uses (default: the host's cores / its workers)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                    help="where CLIP runs (default auto: CUDA when present, else CPU)")
    ap.add_argument("--batch-size", type=int, default=100, help="frames per CLIP forward pass (default 100)")
    ap.add_argument("--videos", help="folder of downloaded clips, for a Kinetics CSV (default: the CSV's folder)")
    ap.add_argument("--video-timeout", type=float, default=300.0,
                    help="seconds ffmpeg may spend on one video before it is recorded as failed (default 300)")
    ap.add_argument("--retry-failed", action="store_true", help="try again the videos recorded as failed")
    ap.add_argument("--replace-changed", action="store_true",
                    help="re-extract cached videos whose file changed (default: refuse, naming the first one)")
    ap.add_argument("--allow-new-root", action="store_true",
                    help="add videos of another source folder to an existing cache (default: refuse)")
    ap.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true",
                    help="no progress display (a bar on a terminal, a line every few seconds in a log)")
    add_examples(ap, ["python -m extract videos/ --out cache.h5 --clip-model ViT-B/32",
                      "python -m extract list.csv --out runs/cache.h5 --frames 32 --quiet",
                      "python -m extract kinetics400_val.csv --videos clips/ --out k400.h5 --device cuda",
                      "python -m extract videos/ --out siglip2.h5 --clip-model open_clip:ViT-B-16-SigLIP2/webli"])
    return ap.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Usage errors, found before any work starts."""
    if args.frames < 1:
        raise ValueError(f"--frames must be at least 1 (got {args.frames})")
    for name in ("workers", "threads_per_worker", "batch_size", "torch_threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
    if args.video_timeout <= 0:
        raise ValueError("--video-timeout must be positive")
    if not os.path.exists(args.source):
        raise ValueError(f"{args.source}: no such file or folder")
    if os.path.isdir(args.out):
        raise ValueError(f"{args.out}: is a directory; --out takes a file name")
    # Missing folders are made (after every other check); the first existing one must be writable.
    folder = os.path.dirname(os.path.abspath(args.out))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise ValueError(f"{args.out}: {folder} is not a folder")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{args.out}: folder {folder} is not writable")
    if args.device == "cuda" and not args.scheduler:
        from extract.layout import cuda_count
        if not cuda_count():
            raise ValueError("--device cuda: this machine has no CUDA GPU that torch can use; "
                             "use --device auto or cpu (or --scheduler with GPU workers)")


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
    try:
        check_args(args)   # before importing torch: usage errors come back at once
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from extract.weights import UnknownModel, WeightsUnavailable
    try:
        from extract.backbones import check_available
        check_available(args.clip_model)   # downloads a named model's weights on first use
    except WeightsUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, UnknownModel) else EXIT_DATA
    try:
        from extract.sources import SourceError, load_source
        source = load_source(args.source, args.videos)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for w in source.warnings:
        print(f"warning: {w}", file=sys.stderr)
    from extract.pipeline import Options, run
    try:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    except OSError as exc:
        print(f"error: {args.out}: cannot create its folder ({exc.strerror or exc})", file=sys.stderr)
        return EXIT_USAGE
    opts = Options(args.clip_model, args.frames, args.workers, args.threads_per_worker, args.scheduler,
                   args.device, args.batch_size, args.video_timeout, args.retry_failed, not args.quiet,
                   args.torch_threads, replace_changed=args.replace_changed, allow_new_root=args.allow_new_root)
    signal.signal(signal.SIGTERM, _term_as_interrupt)
    try:
        summary = run(source, args.out, opts)
    except CacheError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DATA
    except KeyboardInterrupt:
        print(f"interrupted: {_cached_count(args.out)} videos kept in {args.out}; run the same command to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if "random:" in args.clip_model:
        print("!!! RANDOM CLIP WEIGHTS: these embeddings carry no learned meaning !!!", file=sys.stderr)
    paths = {item.id: item.path for item in source.items} if summary.failed else {}
    for vid, why in summary.failed.items():
        looked = f" (looked for {os.path.abspath(paths[vid])})" if why == "file not found" and vid in paths else ""
        print(f"failed: {vid}: {why}{looked}", file=sys.stderr)
    rate = summary.cached / summary.seconds if summary.seconds else 0.0
    ways = ", ".join(f"{k} {v}" for k, v in sorted(summary.strategies.items())) or "none"
    print(f"{args.out}: cached {summary.cached}"
          + (f" ({summary.replaced} changed files re-extracted)" if summary.replaced else "")
          + f", skipped {summary.skipped} already cached, "
          f"failed {len(summary.failed)}"
          + (f" (+{len(summary.still_failed)} failed earlier; --retry-failed retries)" if summary.still_failed else "")
          + f"; {summary.seconds:.1f} s, {rate:.2f} videos/s; sampling: {ways}")
    return EXIT_PARTIAL if summary.failed or summary.still_failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
