"""One predict run: resolve the head or names, get the videos into a cache, score them, write the outputs."""
import argparse
import os
import sys
from typing import Any, Dict, List, Optional

import numpy as np

from clipvid.errors import EXIT_OK, EXIT_PARTIAL, UsageError
from clipvid.options import check_counts
from clipvid.paths import require_input, writable_file, writable_folder
from predict import outputs as O
from predict.classes import Candidates, encode_names, parse_labels
from predict.inputs import Space, extract_into, is_cache_file, open_existing

DEFAULT_MODEL = "ViT-B/32"
DEFAULT_FRAMES = 100


def _check_args(args: argparse.Namespace) -> None:
    check_counts(args, "top", "window", "stride", "frames", "workers")
    if args.html_videos < 0:
        raise UsageError(f"--html-videos must be 0 or more (got {args.html_videos})")
    require_input(args.source)
    writable_folder(args.out)
    if args.cache is not None:
        writable_file(args.cache)


def _space(args: argparse.Namespace, head) -> Space:
    if head is None:
        model = args.clip_model
        if model is None and is_cache_file(args.source):
            from cache.reader import read_settings
            model = str(read_settings(args.source).get("clip_model"))
        return Space(model or DEFAULT_MODEL, args.frames or DEFAULT_FRAMES)
    info = head.cache_info
    space = Space(str(info.get("clip_model")), int(info.get("frames") or 0), info.get("dim"), head.fingerprint,
                  f"the head in {args.run}")
    if args.clip_model and args.clip_model != space.clip_model:
        raise UsageError(f"--clip-model {args.clip_model!r}: the head in {args.run} was trained with "
                         f"{space.clip_model!r} (leave --clip-model out)")
    if args.frames and args.frames != space.frames:
        raise UsageError(f"--frames {args.frames}: the head in {args.run} was trained with N={space.frames} "
                         "(leave --frames out)")
    return space


def _candidates(head, labels: Optional[List[str]], reader, device: str) -> Candidates:
    if head is None:
        return Candidates(labels, encode_names(reader, labels, device),
                          "CLIP text encoder, prompt ensemble", "zero-shot")
    if labels is not None:
        return Candidates(labels, encode_names(reader, labels, device),
                          "CLIP text encoder, prompt ensemble", "open-vocabulary")
    if not head.scores_any_text:
        return Candidates(head.class_names, None, "the linear probe's own weights", "head")
    if head.text_emb is not None:
        return Candidates(head.class_names, head.text_emb, head.text_source, "head")
    return Candidates(head.class_names, encode_names(reader, head.class_names, device),
                      "CLIP text encoder, prompt ensemble (not stored with the head)", "head")


def _scorer(head, cands: Candidates):
    """(the Head that scores, the class texts it scores against or None for its own): one scoring path."""
    if head is not None:
        return head, (cands.text if head.scores_any_text else None)
    from train.head import zero_shot_head
    return zero_shot_head(cands.names, cands.text, cands.source), None


def _rows(reader, ids) -> np.ndarray:
    if ids is None:
        return np.arange(reader.num_videos, dtype=np.int64)
    return np.array([i for i, vid in enumerate(reader.ids) if vid in ids], np.int64)


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    labels = parse_labels(args.labels, args.labels_file)
    if args.run is None and labels is None:
        raise UsageError("give --run RUN_DIR (a trained head) or --labels/--labels-file (zero-shot class names)")
    from clipvid.device import announce, resolve
    from clipvid.resources import use_tmp_dir
    try:
        resolve(args.device)
    except ValueError as exc:
        raise UsageError(f"--device: {exc}")
    try:
        use_tmp_dir(args.tmp_dir)
    except ValueError as exc:
        raise UsageError(f"--tmp-dir: {exc}")
    head = None
    if args.run is not None:
        from train.api import load_head
        head = load_head(args.run, args.device)
        if labels is not None and not head.scores_any_text:
            raise UsageError(f"{args.run}: the {head.name} head scores only the {len(head.class_names)} classes "
                             "it was trained on, not names given with --labels; use a head that scores text "
                             "(meanpool, lstm, transformer, xclip, ...)")
    space = _space(args, head)
    os.makedirs(args.out, exist_ok=True)
    progress = not args.quiet
    if is_cache_file(args.source):
        prepared = open_existing(args.source, space)
    else:
        cache = args.cache or os.path.join(args.out, "cache.h5")
        prepared = extract_into(args.source, args.videos, cache, space, args.workers, args.scheduler,
                                args.device, args.video_timeout, progress)
    from cache.reader import open_cache
    from predict.score import Request, score_cache
    from train.timeline import default_window
    announce(args.device, "train", "predict", args.quiet)
    with open_cache(prepared.cache) as reader:
        cands = _candidates(head, labels, reader, args.device)
        timeline = args.timeline or args.html or args.window is not None or args.stride is not None
        w, s = default_window(reader.frames)
        req = Request(top=args.top, window=min(args.window or w, reader.frames) if timeline else None,
                      stride=(args.stride or s) if timeline else None, page_videos=args.html_videos if args.html else 0)
        frame_rows = head.frame_rows(reader.frames) if head is not None else np.arange(reader.frames)
        scorer, text = _scorer(head, cands)
        outcome = score_cache(reader, _rows(reader, prepared.ids), scorer, text, frame_rows,
                              cands.names, req, args.out, progress)
        summary = _summary(args, head, cands, reader, prepared, outcome, req)
    _write_failures(args.out, prepared.failures)
    from clipvid.jsonfile import write_json
    write_json(os.path.join(args.out, O.SUMMARY), summary)
    page = None
    if args.html:
        from predict.page import write_page
        page = write_page(args.out, summary, outcome.page, prepared.root, progress)
    _report(args, summary, prepared.failures, page)
    return EXIT_PARTIAL if prepared.failures else EXIT_OK


def _summary(args, head, cands: Candidates, reader, prepared, outcome, req) -> Dict[str, Any]:
    acc = outcome.accuracy()
    return {
        "mode": cands.mode, "head": head.name if head else None,
        "run": os.path.abspath(args.run) if args.run else None,
        "classes": len(cands.names), "class_names": cands.names, "text_embeddings": cands.source,
        "cache": os.path.abspath(prepared.cache), "clip_model": reader.clip_model, "frames": reader.frames,
        "random_weights": reader.random_weights, "fingerprint": reader.fingerprint,
        "counts": {"videos": outcome.videos, "labelled_known_class": acc["n"],
                   "labelled_unknown_class": outcome.unknown_class, "unlabelled": outcome.unlabelled,
                   "failed": len(prepared.failures), "extracted_now": prepared.extracted,
                   "already_cached": prepared.skipped},
        "unknown_classes": outcome.unknown_names,
        "accuracy": acc,
        "timeline": {"window": req.window, "stride": req.stride, "segments": outcome.segments}
        if req.window else None,
        "failures": [{"id": k, "reason": v} for k, v in sorted(prepared.failures.items())],
    }


def _write_failures(out_dir: str, failures: Dict[str, str]) -> None:
    csv_out = O.CsvOut(os.path.join(out_dir, O.FAILURES), ["id", "reason"])
    for vid, why in sorted(failures.items()):
        csv_out.row([vid, why])
    csv_out.close()


def _report(args, summary: Dict[str, Any], failures: Dict[str, str], page: Optional[str]) -> None:
    if summary["random_weights"]:
        print("!!! RANDOM CLIP WEIGHTS: these predictions carry no learned meaning !!!", file=sys.stderr)
    for vid, why in sorted(failures.items()):
        print(f"failed: {vid}: {why}", file=sys.stderr)
    c, acc = summary["counts"], summary["accuracy"]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"
    line = f"{os.path.join(args.out, O.PREDICTIONS)}: {c['videos']} videos ({summary['mode']}"
    line += f", {summary['head']})" if summary["head"] else ")"
    if acc["n"]:
        line += f"; {acc['n']} labelled with a known class: top-1 {fmt(acc['top1'])}, top-5 {fmt(acc['top5'])}"
    if c["labelled_unknown_class"]:
        line += f"; {c['labelled_unknown_class']} of classes it does not know"
    line += f"; {c['failed']} failed"
    print(line)
    if summary["timeline"]:
        print(os.path.join(args.out, O.TIMELINE))
    if page:
        print(page)
