"""`python -m train`: parse the command line, train the asked-for heads, print one summary line each."""
import argparse
import os
import shlex
import sys
from typing import List, Optional

from clipvid.helptext import add_examples
from clipvid.errors import EXIT_INTERRUPTED, EXIT_OK, UsageError, exit_status
from clipvid.options import Parser, add_device, add_quiet, check_counts
from clipvid.paths import writable_folder
from cache.reader import open_cache
from train.checkpoint import CHECKPOINT_NAME
from clipvid.device import announce, resolve_device
from clipvid.resources import TMP_DIR_HELP, use_tmp_dir
from train.device import set_cpu_threads
from train.prepare import prepare
from train.outputs import run_dir_for, settings_tag
from train.registry import ALL_METHODS, HEADS
from train.run import HeadOptions, train_heads

EPILOG = f"""heads: {', '.join(ALL_METHODS)} (or all).
Outputs RUNS/<head>-<settings>/seed<k>/: head.pt, metrics.json, predictions.csv, split.json, video_emb.npy.
<settings> names the frames (f), for trained heads the epochs (e) and learning rate (lr), the open-set
choice and a non-default --split-seed; the same head, settings and seed is replaced (with a note).
Exit status: 0 done, 2 bad arguments, 3 unusable cache or file."""


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(
        prog="python -m train", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train temporal heads and score order-blind baselines on a clipvid cache "
                    "(needs only the cache: no CLIP weights, no videos).")
    ap.add_argument("cache", metavar="CACHE.h5", help="cache written by python -m extract")
    ap.add_argument("--head", default="all", metavar="NAME[,NAME...]|all", help="methods to run (default: all)")
    ap.add_argument("--out", required=True, metavar="RUNS", help="folder for the run folders, one per head")
    ap.add_argument("--epochs", type=int, default=60, help="most epochs; early stopping may end sooner (default 60)")
    seeds = ap.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, default=0, help="seed for initial weights and batch order (default 0)")
    seeds.add_argument("--seeds", metavar="K[,K...]", help="train one run per seed, e.g. 0,1,2 (default: --seed)")
    ap.add_argument("--split-seed", type=int, default=0,
                    help="seed for the train/val/test split and held-out classes, fixed across --seeds (default 0)")
    add_device(ap, "the heads")
    ap.add_argument("--tmp-dir", help=TMP_DIR_HELP)
    ap.add_argument("--frames", type=int, metavar="K", help="use K evenly spaced rows of the N cached (all)")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--holdout-classes", type=int, metavar="K",
                       help="open set: hold out K random classes, test them zero-shot by name")
    group.add_argument("--train-classes", metavar="FILE",
                       help="open set: train on the class names in FILE (one per line), test the rest zero-shot")
    ap.add_argument("--lr", type=float, help="learning rate of the trained heads (per-head default)")
    ap.add_argument("--batch-size", type=int, help="videos per step (default: by training-set size)")
    ap.add_argument("--patience", type=int, default=15, help="epochs without validation gain before stopping (default 15)")
    ap.add_argument("--max-memory-mb", type=float,
                    help="largest in-memory copy of the frames; beyond it they stream from disk in prefetched blocks "
                         "(default: half the available RAM)")
    ap.add_argument("--threads", type=int, default=0,
                    help="CPU threads for torch (default: 1 for small caches, all cores for large ones)")
    add_quiet(ap)
    ap.add_argument("--list-runs", action="store_true",
                    help="only print 'HEAD<tab>RUN_FOLDER' for each run these options would write, and exit")
    return add_examples(ap, ["python -m train cache.h5 --head all --out runs/",
                             "python -m train cache.h5 --head lstm,xclip --seeds 0,1,2 --frames 16 --out runs/",
                             "python -m train cache.h5 --head xclip --holdout-classes 3 --out runs_open/"])


def parse_heads(text: str) -> List[str]:
    """'all' or a comma list of known names, in the order given, without repeats."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(ALL_METHODS)
    unknown = [n for n in names if n not in ALL_METHODS]
    if unknown or not names:
        raise UsageError(f"--head: unknown head {', '.join(map(repr, unknown)) or '(none)'}; "
                         f"choose from {', '.join(ALL_METHODS)} or all")
    return list(dict.fromkeys(names))


def read_class_file(path: str) -> List[str]:
    """Class names, one per line; blank lines and #-comments are skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})")
    if not names:
        raise UsageError(f"{path}: lists no class names")
    return names


def parse_seeds(args: argparse.Namespace) -> List[int]:
    """--seeds 0,1,2 (no repeats, order kept) or the single --seed."""
    if args.seeds is None:
        return [args.seed]
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--seeds: expected whole numbers separated by commas, got {args.seeds!r}")
    if not seeds:
        raise UsageError("--seeds: give at least one seed")
    return list(dict.fromkeys(seeds))


def run_tag(name: str, args: argparse.Namespace, frames: int) -> str:
    """The <head>-<settings> folder name of one head under these options."""
    spec = HEADS[name]
    return settings_tag(name, frames, args.epochs if spec.trains else None,
                        (args.lr if args.lr is not None else spec.defaults["lr"]) if spec.trains else None,
                        args.holdout_classes, read_class_file(args.train_classes) if args.train_classes else None,
                        args.split_seed)


def summary_line(m: dict) -> str:
    test, val = m["test"], m["val"]
    fmt = (lambda v: "  -  " if v is None or v != v else f"{v:.3f}")
    line = (f"{m['head']:<12} seed {m.get('seed')} test top1 {fmt(test['top1'])} top5 {fmt(test['top5'])} "
            f"mean-class {fmt(test['mean_class'])} | val top1 {fmt(val['top1'])}")
    if "test_unseen" in m:
        line += f" | seen {fmt(m['test_seen']['top1'])} unseen {fmt(m['test_unseen']['top1'])}"
    if m["epochs_run"]:
        line += (f" | {m['epochs_run']} epochs (best {m['best_epoch']}), {m['seconds_per_epoch']:.2f} s/epoch,"
                 f" {m['seconds_to_best']:.1f} s to best")
    return line + f" | {m['seconds']:.1f} s"


def _seeds_of(name: str, seeds: List[int]) -> List[int]:
    return seeds if HEADS[name].learns else seeds[:1]  # training-free: every seed gives the same run


def _list_runs(args: argparse.Namespace, heads: List[str], seeds: List[int]) -> int:
    with open_cache(args.cache) as reader:
        frames = reader.frames if args.frames is None else min(args.frames, reader.frames)
    for name in heads:
        for seed in _seeds_of(name, seeds):
            print(f"{name}\t{run_dir_for(args.out, run_tag(name, args, frames), seed)}")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    heads = parse_heads(args.head)
    seeds = parse_seeds(args)
    check_counts(args, "epochs", "batch_size", "patience", "holdout_classes")
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise UsageError(f"--device: {exc}")
    try:
        use_tmp_dir(args.tmp_dir)
    except ValueError as exc:
        raise UsageError(f"--tmp-dir: {exc}")
    classes = read_class_file(args.train_classes) if args.train_classes else None
    writable_folder(args.out)
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{args.out}: cannot create the output folder ({exc.strerror})")
    if args.list_runs:
        return _list_runs(args, heads, seeds)
    return _train(args, heads, seeds, device, classes)


def _train(args: argparse.Namespace, heads: List[str], seeds: List[int], device,
           classes: Optional[List[str]]) -> int:
    budget = int(args.max_memory_mb * (1 << 20)) if args.max_memory_mb is not None else None
    data = prepare(args.cache, args.frames, args.split_seed, args.holdout_classes, classes, budget)
    if data.reader.random_weights:
        print(f"note: {args.cache} was made with RANDOM CLIP weights; accuracies measure the heads only",
              file=sys.stderr)
    if data.source.disk_note:
        print(f"note: {data.source.disk_note}", file=sys.stderr)
    announce(args.device, "train", "train", args.quiet)
    set_cpu_threads(device, args.threads, len(data.splits["train"]) * len(data.frames) * data.reader.dim)
    lines: List[str] = []
    try:
        for seed in seeds:
            names = [n for n in heads if seed in _seeds_of(n, seeds)]
            dirs = {n: run_dir_for(args.out, run_tag(n, args, len(data.frames)), seed) for n in names}
            for d in dirs.values():
                if os.path.exists(os.path.join(d, CHECKPOINT_NAME)):
                    print(f"note: replacing the earlier run in {d} (same head, settings and seed)", file=sys.stderr)
            opts = HeadOptions(epochs=args.epochs, seed=seed, lr=args.lr, batch_size=args.batch_size,
                               patience=args.patience, progress=not args.quiet, split_seed=args.split_seed,
                               command=args.command, run_dirs=dirs)
            train_heads(names, data, args.out, opts, device,
                        done=lambda m: lines.append(f"{summary_line(m)} | {dirs[m['head']]}"))
    except KeyboardInterrupt:
        for line in lines:
            print(line)
        done = ", ".join(heads[:len(lines)]) or "none"
        print(f"interrupted: {len(lines)} of {len(heads)} heads finished in {args.out} ({done}); "
              f"the head in training was discarded", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        data.reader.close()
    for line in lines:
        print(line)
    return EXIT_OK


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status instead of raising (errors are one line on stderr)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.command = "python -m train " + shlex.join(argv)
    existed = os.path.isdir(args.out)
    try:
        status = _status(args)
    except BaseException:
        _remove_if_empty(args.out, existed)
        raise
    if status not in (EXIT_OK, EXIT_INTERRUPTED):
        _remove_if_empty(args.out, existed)
    return status


def _remove_if_empty(folder: str, existed: bool) -> None:
    """A refused run leaves no empty output folder behind (one it did not find there)."""
    if not existed:
        try:
            os.rmdir(folder)
        except OSError:   # not empty, or never made
            pass


def _status(args: argparse.Namespace) -> int:
    return exit_status(lambda: _run(args), out=args.out, interrupted=lambda: f"interrupted: no head trained into {args.out}")
