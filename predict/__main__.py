"""`python -m predict SOURCE --run RUNS/<head> --out PRED`: classify new videos and label every moment."""
import argparse
import sys
from typing import List, Optional

from clipvid.errors import exit_status
from clipvid.options import Parser, add_clip_model, add_device, add_quiet, add_video_timeout, add_workers
from clipvid.resources import TMP_DIR_HELP


EPILOG = """Writes PRED/predictions.csv (id,label,pred_1,score_1,...), PRED/summary.json, PRED/failures.csv;
with a timeline also PRED/timeline.csv and PRED/subtitles/<id>.vtt; with --html PRED/timeline.html.
exit status: 0 done; 1 done but some videos failed (listed); 2 usage error; 3 unusable cache,
checkpoint, source or a cache made with another CLIP model or N (missing or unusable).

examples:
  python -m predict new_videos/ --run runs/transformer --out pred/
  python -m predict new_videos/ --run runs/lstm --out pred/ --window 20 --stride 10 --html
  python -m predict clips.csv --labels "playing violin,juggling,surfing" --clip-model ViT-B/32 --out pred/"""


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(
        prog="python -m predict", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Classify videos with a trained head (--run) or with class names given now (--labels), "
                    "per video and per moment. New videos are extracted first with the head's own CLIP "
                    "model and N (resuming like python -m extract).")
    ap.add_argument("source", metavar="SOURCE", help="a folder (sub-folder per class, or just videos), a "
                    "path[,label] CSV, a Kinetics CSV, or an existing cache (.h5)")
    ap.add_argument("--run", metavar="RUN_DIR", help="a folder holding head.pt (RUNS/<head>, any depth)")
    ap.add_argument("--labels", metavar="NAMES", help="comma-separated class names: zero-shot without --run, "
                    "open vocabulary with it")
    ap.add_argument("--labels-file", metavar="FILE", help="class names, one per line (instead of --labels)")
    ap.add_argument("--out", required=True, metavar="PRED_DIR", help="folder for the outputs (created)")
    ap.add_argument("--cache", metavar="CACHE.h5", help="where new videos are extracted (default PRED_DIR/cache.h5)")
    ap.add_argument("--top", type=int, default=5, help="classes listed per video (default 5)")
    ap.add_argument("--window", type=int, metavar="W", help="timeline window in rows of N (default N/5; "
                    "giving --window, --stride, --timeline or --html turns the timeline on)")
    ap.add_argument("--stride", type=int, metavar="S", help="timeline step in rows of N (default N/10)")
    ap.add_argument("--timeline", action="store_true", help="write the timeline with the default window")
    ap.add_argument("--html", action="store_true", help="also write PRED_DIR/timeline.html")
    ap.add_argument("--html-videos", type=int, default=500, help="most videos on the HTML page (default 500)")
    add_clip_model(ap, None, "the head's with --run, and a --clip-model must match it; zero-shot: the cache's "
                             "when SOURCE is a cache, else ViT-B/32")
    ap.add_argument("--frames", type=int, help="zero-shot: frames sampled per video, N (default 100)")
    ap.add_argument("--videos", help="folder of downloaded clips, for a Kinetics CSV")
    add_workers(ap)
    ap.add_argument("--scheduler", help="an existing Dask scheduler for extraction, e.g. tcp://host:8786")
    add_device(ap)
    ap.add_argument("--tmp-dir", help=TMP_DIR_HELP)
    add_video_timeout(ap)
    add_quiet(ap)
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status (errors are one line on stderr, no traceback)."""
    args = build_parser().parse_args(argv)
    from predict.run import run
    return exit_status(lambda: run(args), out=args.out, interrupted=lambda: (
        "interrupted: extracted videos are kept in the cache; run the same command to resume"))


if __name__ == "__main__":
    sys.exit(main())
