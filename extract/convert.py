"""One decode, several backbones: the geometry a video is decoded at, and its conversion to each backbone's input."""
import dataclasses
from typing import Sequence

import numpy as np

from extract.backbones import Preprocess

# Backbones that disagree on geometry share a decode of the whole frame squashed to a square this many
# times their largest input: a centre crop of a frame up to 2:1 then still has at least its input size
# in both directions, so every backbone's picture is a downscale, as its own transform makes it.
SHARED_SCALE = 2


def _geometry(p: Preprocess) -> tuple:
    return p.size, p.resize, p.interpolation


def decode_preprocess(preps: Sequence[Preprocess]) -> Preprocess:
    """The geometry to decode at for these backbones: theirs when they share one (so a backbone gets exactly
    the frames a run of it alone gets), else the whole frame squashed to a large square."""
    if len({_geometry(p) for p in preps}) == 1:
        return preps[0]
    return Preprocess(SHARED_SCALE * max(p.size for p in preps), "squash", "bicubic")


def prepare(preps: Sequence[Preprocess]) -> None:
    """Import the resizing code now when these backbones will need it (seconds, once per worker), so that
    the first video of a run is not charged for it."""
    if len({_geometry(p) for p in preps}) > 1:
        from torchvision.transforms.v2 import functional  # noqa: F401


def to_backbone(frames: np.ndarray, width: int, height: int, decoded: Preprocess,
                target: Preprocess) -> np.ndarray:
    """uint8 frames [D, L, L, 3] decoded at `decoded` from a width x height (displayed) video -> [D, S, S, 3]
    as `target`'s preprocessing makes them: its centre square or the whole frame, at its size, with its
    interpolation (antialiased, as torchvision's Resize). Channels-last views of planar memory, as decoded."""
    if _geometry(decoded) == _geometry(target):
        return frames
    if decoded.resize != "squash":
        raise ValueError("backbones of other geometries convert from a squashed whole-frame decode only")
    import torch
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as F
    side = frames.shape[1]
    planes = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))   # [D, 3, L, L] uint8
    mode = InterpolationMode.BILINEAR if target.interpolation == "bilinear" else InterpolationMode.BICUBIC
    if target.resize == "squash":
        top, left, h, w = 0, 0, side, side
    else:   # the source's centre square, in the squashed picture's coordinates
        short = min(width, height)
        w, h = round(side * short / width), round(side * short / height)
        left, top = (side - w) // 2, (side - h) // 2
    out = F.resized_crop(planes, top, left, h, w, [target.size, target.size], interpolation=mode, antialias=True)
    return out.numpy().transpose(0, 2, 3, 1)                                         # [D, S, S, 3] view


def sample_for(sample, decoded: Preprocess, target: Preprocess):
    """A decoded extract.decode.Sample as `target` sees it (the same rows and times, its own pictures)."""
    if _geometry(decoded) == _geometry(target):
        return sample
    from extract.sampling import displayed_size
    w, h = displayed_size(sample.info.width, sample.info.height, sample.info.rotation)
    return dataclasses.replace(sample, distinct=to_backbone(sample.distinct, w, h, decoded, target))
