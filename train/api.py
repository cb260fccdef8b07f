"""Load a trained (or baseline) method from its run folder, for evaluation and search."""
import os
from typing import Optional

from cache.reader import CacheReader
from train.checkpoint import CHECKPOINT_NAME, CheckpointError, check_compatible, load_checkpoint
from train.device import resolve_device
from train.method import Method
from train.registry import make_method

__all__ = ["load_method", "Method", "CheckpointError"]


def load_method(run_dir: str, reader: Optional[CacheReader] = None, device: str = "auto") -> Method:
    """The method saved in RUNS/<head>/head.pt; with a reader, refuse one made for another cache.

    Raises CheckpointError (a ValueError) naming the file for a missing, damaged or mismatched checkpoint.
    """
    path = os.path.join(run_dir, CHECKPOINT_NAME)
    blob = load_checkpoint(path)
    if reader is not None:
        check_compatible(blob, path, reader.fingerprint, reader.class_names, reader.path)
    try:
        return make_method(blob["head"], blob["class_names"], blob["config"], blob["state_dict"],
                           resolve_device(device))
    except (KeyError, RuntimeError, TypeError) as exc:  # weights that do not fit the stored config
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(path, f"damaged checkpoint for head {blob['head']!r}: {first}")
