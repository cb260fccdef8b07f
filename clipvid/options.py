"""The command-line conventions every command shares: one error shape for argparse, and the common
options (--quiet, --clip-model, --workers, --video-timeout, --device) declared once."""
import argparse
from typing import Optional

from clipvid.errors import EXIT_USAGE, say_error

DEVICE_METAVAR = "auto|cpu|cuda|cuda:N|mps"


class Parser(argparse.ArgumentParser):
    """argparse whose mistakes read like every other error: one line `error: <prog>: <what>`, exit 2."""

    def error(self, message: str) -> None:   # type: ignore[override]
        say_error(f"{self.prog}: {message} (--help for usage)")
        self.exit(EXIT_USAGE)


def add_quiet(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true",
                    help="no progress display (a bar on a terminal, a line every few seconds in a log); "
                         "summaries and errors still print")


def add_clip_model(ap: argparse.ArgumentParser, default: Optional[str] = None,
                   shown: str = "the model recorded in the cache", several: bool = False) -> None:
    """`shown` says what a missing --clip-model means when `default` is None; `several`: the option may be
    repeated (a list, None when not given)."""
    ap.add_argument("--clip-model", default=None if several else default, metavar="MODEL",
                    action="append" if several else "store",
                    help="backbone: an OpenAI CLIP name (weights downloaded on first use), a weights file, "
                         "random:<arch>, open_clip:ARCH/PRETRAINED, open_clip:ARCH@/path/to/checkpoint or "
                         "random:open_clip:ARCH" + ("; repeat it for one cache per backbone from one decode "
                                                    "(with --out-dir)" if several else "")
                         + f" (default {default if default is not None else shown})")


def add_workers(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--workers", type=int,
                    help="Dask worker processes for extraction (default: one per core up to 8; with GPUs, one per "
                         "core, up to 16 per GPU and one per 3 GiB of its memory)")


def add_video_timeout(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--video-timeout", type=float, default=300.0, metavar="SECONDS",
                    help="seconds ffmpeg may spend on one video before it is recorded as failed (default 300)")


def add_device(ap: argparse.ArgumentParser, what: str = "CLIP and the heads") -> None:
    """The values' meaning (and fp16/bf16) is decided in one place, not here."""
    from clipvid.device import DEVICE_HELP
    ap.add_argument("--device", default="auto", metavar=DEVICE_METAVAR, help=f"where {what} run: {DEVICE_HELP}")


def check_counts(args: argparse.Namespace, *names: str) -> None:
    """Each named option, when given, is at least 1 (a UsageError names the first that is not)."""
    from clipvid.errors import UsageError
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
    if getattr(args, "video_timeout", 1) <= 0:
        raise UsageError("--video-timeout must be positive")
