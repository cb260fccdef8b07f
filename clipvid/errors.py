"""Errors and exit statuses shared by every clipvid command."""
import os
import sys
from typing import Callable

# Exit statuses, the same for every `python -m <stage>` command.
EXIT_OK = 0        # everything asked for was done
EXIT_PARTIAL = 1   # the run finished but some inputs failed (listed in the output)
EXIT_USAGE = 2     # bad arguments; nothing was done (argparse uses 2 as well)
EXIT_DATA = 3      # an input file (cache, checkpoint, CSV) is unusable; nothing was done
EXIT_INTERRUPTED = 130   # Ctrl-C (128 + SIGINT, as a shell reports it); finished work is kept


def stdout_closed() -> int:
    """The reader of our output stopped early (`| head`): not an error. Later writes go nowhere
    (no second BrokenPipeError at exit) and the command ends with status 0."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_OK


class CacheError(Exception):
    """A cache file that cannot be used, with a one-line reason naming the file."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class UsageError(ValueError):
    """A bad command-line request (exit status 2), as opposed to an unusable file (3)."""


def exit_status(body: Callable[[], int], out: str, interrupted: str) -> int:
    """body()'s status, or one line on stderr and the status for its error: a bad request 2, an unusable
    cache, checkpoint or output folder (`out` when the error names no file) 3, Ctrl-C 130 with `interrupted`."""
    from train.checkpoint import CheckpointError
    try:
        return body()
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (CacheError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DATA
    except OSError as exc:  # e.g. the output folder is not writable or the disk filled up
        print(f"error: {exc.filename or out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_DATA
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return EXIT_INTERRUPTED
