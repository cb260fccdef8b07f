"""The errors a command reports in one line, and the exit status each one ends it with."""
import sys
from typing import Callable

from cache.errors import EXIT_DATA, EXIT_INTERRUPTED, EXIT_USAGE, CacheError


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
