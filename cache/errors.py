"""Errors and exit statuses shared by every clipvid command."""
import os
import sys

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
