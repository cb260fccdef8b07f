"""The Python API: open a cache, load a head, classify frames, label every moment (see README, Python API)."""
import os
from typing import Optional

from cache.reader import CacheReader
from train.checkpoint import CHECKPOINT_NAME, CheckpointError, check_compatible, load_checkpoint
from train.dataset import CacheArrays, FrameDataset, load_arrays
from train.head import Head, load_head, method_from_blob
from train.method import Method
from train.timeline import Segment, default_window, timeline, window_probabilities, window_starts

__all__ = ["load_method", "Method", "CheckpointError", "load_arrays", "CacheArrays", "FrameDataset",
           "load_head", "Head", "timeline", "Segment", "default_window", "window_probabilities",
           "window_starts"]


def load_method(run_dir: str, reader: Optional[CacheReader] = None, device: str = "auto") -> Method:
    """The method saved in RUNS/<head>/head.pt; with a reader, refuse one made for another cache.

    Raises CheckpointError (a ValueError) naming the file for a missing, damaged or mismatched checkpoint.
    """
    path = os.path.join(run_dir, CHECKPOINT_NAME)
    blob = load_checkpoint(path)
    if reader is not None:
        check_compatible(blob, path, reader.fingerprint, reader.class_names, reader.path)
    return method_from_blob(blob, path, device)
