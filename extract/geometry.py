"""A backbone's input geometry (size, resize mode, interpolation) and where it puts a source frame."""
from dataclasses import dataclass
from typing import List, Tuple

CLIP_SIZE = 224
MAX_ASPECT = 4  # a longer side beyond this many short sides is centre-cropped before scaling
MODES = ("crop", "squash")
INTERPOLATIONS = ("bicubic", "bilinear", "area", "lanczos", "neighbor")


@dataclass(frozen=True)
class Geometry:
    """How one backbone's preprocessing turns a picture into its square input.

    mode 'crop': short side to `size`, then the centre square (OpenAI CLIP's Resize + CenterCrop);
    mode 'squash': the whole picture to size x size, aspect not kept (SigLIP's Resize((s, s)))."""
    size: int = CLIP_SIZE
    mode: str = "crop"
    interpolation: str = "bicubic"

    def __post_init__(self) -> None:
        if self.mode not in MODES or self.interpolation not in INTERPOLATIONS or not 8 <= self.size <= 4096:
            raise ValueError(f"unsupported geometry {self}")


CLIP = Geometry()


@dataclass(frozen=True)
class Placement:
    """Where a width x height picture goes: an optional centred pre-crop, a scale, a final crop."""
    pre_width: int      # 0: no pre-crop
    pre_height: int
    width: int          # scaled size
    height: int
    crop_x: int
    crop_y: int


def place(width: int, height: int, geo: Geometry) -> Placement:
    """The placement of a picture. 'crop' mode follows torchvision: Resize(size) keeps the short side
    = size and truncates the long one, CenterCrop rounds the offset half to even (Python round). For
    extreme shapes (10000x10) the centre MAX_ASPECT:1 part is cut first, so the scaled frame stays
    small; the final square is the same region."""
    if geo.mode == "squash":
        return Placement(0, 0, geo.size, geo.size, 0, 0)
    pre_w = pre_h = 0
    short, long_ = min(width, height), max(width, height)
    if long_ > MAX_ASPECT * short:
        keep = min(long_, MAX_ASPECT * short + (MAX_ASPECT * short) % 2)
        pre_w, pre_h = (keep, height) if width > height else (width, keep)
        width, height = pre_w, pre_h
    s = geo.size
    w, h = (s, int(s * height / width)) if width <= height else (int(s * width / height), s)
    return Placement(pre_w, pre_h, w, h, int(round((w - s) / 2.0)), int(round((h - s) / 2.0)))


def filters(width: int, height: int, geo: Geometry) -> List[Tuple[str, str]]:
    """(filter, arguments) that take a width x height picture to geo's planar RGB (gbrp) input."""
    p = place(width, height, geo)
    chain = [("crop", f"{p.pre_width}:{p.pre_height}")] if p.pre_width else []
    # Scale before cropping, as torchvision's Resize then CenterCrop do. Plain bicubic into planar RGB
    # takes swscale's SIMD path; shrinking 2x or more, 'area' is as close to PIL's antialiased bicubic
    # and cheaper (bench/PERFORMANCE.md, decode).
    shrink = min(p.pre_width or width, p.pre_height or height) / max(1, min(p.width, p.height))
    flags = "area" if geo.interpolation == "bicubic" and shrink >= 2 else geo.interpolation
    chain += [("scale", f"{p.width}:{p.height}:flags={flags}"), ("format", "gbrp")]
    if (p.width, p.height) != (geo.size, geo.size):
        chain.append(("crop", f"{geo.size}:{geo.size}:{p.crop_x}:{p.crop_y}"))
    return chain
