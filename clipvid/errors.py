"""Exit statuses, the errors that choose them, and the one mapping from error to status and message."""
import os
import sys
from typing import Callable, Optional

# Exit statuses, the same for every command (the table is in the README / docs/commands.md).
EXIT_OK = 0        # everything asked for was done
EXIT_PARTIAL = 1   # the run finished but some inputs failed (listed in the output)
EXIT_USAGE = 2     # the command line asks for something impossible; nothing was done (argparse uses 2 as well)
EXIT_DATA = 3      # an input it names (cache, checkpoint, CSV, queries) is missing or unusable; nothing was done
EXIT_INTERRUPTED = 130   # Ctrl-C (128 + SIGINT, as a shell reports it); finished work is kept
EXIT_HELP = ("exit status: 0 done; 1 done but some inputs failed (listed); 2 usage error (a bad option or value, "
             "an --out that cannot be written; nothing done); 3 an input it names is missing or unusable "
             "(nothing done); 130 interrupted.")


class UsageError(ValueError):
    """A bad command-line request: an unknown or out-of-range value, an output that cannot be written (exit 2)."""


class DataError(Exception):
    """An input file or folder that is missing or cannot be used, with a one-line reason naming it (exit 3)."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class CacheError(DataError):
    """A cache file that cannot be used, with a one-line reason naming the file."""


def stdout_closed() -> int:
    """The reader of our output stopped early (`| head`): not an error. Later writes go nowhere
    (no second BrokenPipeError at exit) and the command ends with status 0."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_OK


def say_error(text: str) -> None:
    """The one shape of an error: a single line `error: <file or option>: <reason>` on stderr."""
    print(f"error: {' '.join(str(text).split())}", file=sys.stderr)


def exit_status(body: Callable[[], int], interrupted: Callable[[], str], out: Optional[str] = None) -> int:
    """body()'s status, or one line on stderr and the status of its error (the one mapping every command
    uses): UsageError 2, DataError 3, an OSError 3 naming its file (`out` when it names none), Ctrl-C 130
    with the line interrupted() gives, a closed stdout (`| head`) 0."""
    try:
        return body()
    except BrokenPipeError:
        return stdout_closed()
    except UsageError as exc:
        say_error(str(exc))
        return EXIT_USAGE
    except DataError as exc:
        say_error(str(exc))
        return EXIT_DATA
    except OSError as exc:  # e.g. the disk filled up while writing
        say_error(f"{exc.filename or out or 'output'}: {exc.strerror or exc}")
        return EXIT_DATA
    except KeyboardInterrupt:
        print(interrupted(), file=sys.stderr)
        return EXIT_INTERRUPTED
