"""Errors and exit statuses shared by every clipvid command."""

# Exit statuses, the same for every `python -m <stage>` command.
EXIT_OK = 0        # everything asked for was done
EXIT_PARTIAL = 1   # the run finished but some inputs failed (listed in the output)
EXIT_USAGE = 2     # bad arguments; nothing was done (argparse uses 2 as well)
EXIT_DATA = 3      # an input file (cache, checkpoint, CSV) is unusable; nothing was done
EXIT_INTERRUPTED = 130   # Ctrl-C (128 + SIGINT, as a shell reports it); finished work is kept


class CacheError(Exception):
    """A cache file that cannot be used, with a one-line reason naming the file."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
