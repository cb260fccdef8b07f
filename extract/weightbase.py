"""What every weights module shares: the offline switch, where generated weights live, the errors."""
import os

from clipvid.errors import DataError, UsageError

RANDOM_SEED = 0

OFFLINE_ENV = "CLIPVID_OFFLINE"       # set (not 0): never try the network, fail at once naming the file


def offline() -> bool:
    """True when CLIPVID_OFFLINE (or the Hugging Face hub's HF_HUB_OFFLINE) forbids downloads."""
    return any(os.environ.get(k, "") not in ("", "0") for k in (OFFLINE_ENV, "HF_HUB_OFFLINE"))


if offline():   # the hub reads its own switch when first imported, which is after this module
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


class WeightsUnavailable(DataError):
    """The weights (or tokenizer) of --clip-model are not on this machine and cannot be downloaded, or
    cannot be loaded: exit 3, in one line naming what is missing and where it goes."""

    def __init__(self, message: str):
        Exception.__init__(self, message)
        self.path, self.reason = "", message


class UnknownModel(UsageError, WeightsUnavailable):
    """--clip-model names no model clipvid knows: a usage error (exit 2), not a missing file."""

    def __init__(self, message: str):
        WeightsUnavailable.__init__(self, message)


def home() -> str:
    """Where clipvid keeps generated files (random weights); $CLIPVID_HOME overrides."""
    return os.environ.get("CLIPVID_HOME", os.path.join(os.path.expanduser("~"), ".cache", "clipvid"))
