"""`python -m extract.synthetic OUT`: render the built-in labelled demo set (a folder per class) with ffmpeg.

Half the classes come in pairs that are time reversals of each other (the same frames, opposite
order), so only methods that look at frame order can tell a pair apart."""
import argparse
import os
import subprocess
import sys
from typing import Callable, Dict, List, Tuple

import numpy as np

from clipvid.errors import EXIT_OK, exit_status
from clipvid.helptext import add_examples
from clipvid.jsonfile import write_json
from clipvid.options import Parser, add_quiet, check_counts
from clipvid.progress import progress as progress_display
from extract.ffmpeg_bin import ffmpeg_exe

Frames = np.ndarray  # [T, H, W, 3] uint8


def _canvas(rng, t_count: int, h: int, w: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    bg = rng.uniform(0, 90, size=3)
    frames = np.broadcast_to(bg, (t_count, h, w, 3)).astype(np.float32).copy()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return frames, yy, xx


def _colour(rng) -> np.ndarray:
    c = rng.uniform(120, 255, size=3)
    c[rng.integers(3)] = rng.uniform(0, 80)   # saturated, never grey
    return c


def ball_right(rng, t, h, w):
    f, yy, xx = _canvas(rng, len(t), h, w)
    r, y, col = rng.uniform(0.08, 0.16) * h, rng.uniform(0.3, 0.7) * h, _colour(rng)
    for i, s in enumerate(t):
        x = (0.1 + 0.8 * s) * w
        f[i][(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = col
    return f


def square_grow(rng, t, h, w):
    f, yy, xx = _canvas(rng, len(t), h, w)
    cy, cx, col = rng.uniform(0.4, 0.6) * h, rng.uniform(0.4, 0.6) * w, _colour(rng)
    for i, s in enumerate(t):
        half = (0.05 + 0.35 * s) * min(h, w)
        f[i][(np.abs(yy - cy) <= half) & (np.abs(xx - cx) <= half)] = col
    return f


def light_fade_in(rng, t, h, w):
    f, yy, xx = _canvas(rng, len(t), h, w)
    cy, cx, col = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w, _colour(rng)
    blob = np.exp(-(((yy - cy) / (0.35 * h)) ** 2 + ((xx - cx) / (0.35 * w)) ** 2))[..., None]
    for i, s in enumerate(t):
        f[i] = f[i] * (1 - s * blob) + col * s * blob
    return f


def bar_rise(rng, t, h, w):
    f, yy, xx = _canvas(rng, len(t), h, w)
    thick, col = rng.uniform(0.08, 0.15) * h, _colour(rng)
    for i, s in enumerate(t):
        y = (0.9 - 0.8 * s) * h
        f[i][np.abs(yy - y) <= thick / 2] = col
    return f


def stripes(rng, t, h, w, vertical: bool):
    f, yy, xx = _canvas(rng, len(t), h, w)
    period, col, speed = rng.uniform(0.15, 0.3) * (w if vertical else h), _colour(rng), rng.uniform(-1, 1)
    axis = xx if vertical else yy
    for i, s in enumerate(t):
        on = np.sin(2 * np.pi * (axis / period + speed * s)) > 0
        f[i][on] = col
    return f


def checkerboard(rng, t, h, w):
    f, yy, xx = _canvas(rng, len(t), h, w)
    cell, col = rng.uniform(0.12, 0.25) * min(h, w), _colour(rng)
    board = ((yy // cell + xx // cell) % 2).astype(bool)
    flips = rng.integers(2, 5)
    for i, s in enumerate(t):
        f[i][board ^ (int(s * flips * 2) % 2 == 1)] = col
    return f


def ring(rng, t, h, w):
    f, yy, xx = _canvas(rng, len(t), h, w)
    cy, cx, col = rng.uniform(0.4, 0.6) * h, rng.uniform(0.4, 0.6) * w, _colour(rng)
    d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    for i, s in enumerate(t):
        r = (0.25 + 0.08 * np.sin(2 * np.pi * 2 * s)) * min(h, w)
        f[i][np.abs(d - r) <= 0.05 * min(h, w)] = col
    return f


def _reverse(gen: Callable) -> Callable:
    return lambda rng, t, h, w: gen(rng, t, h, w)[::-1]


# Class name -> generator(rng, t in [0, 1] [T], h, w) -> float frames [T, H, W, 3]
PAIRS: List[Tuple[str, str, Callable]] = [
    ("a ball rolling to the right", "a ball rolling to the left", ball_right),
    ("a square growing", "a square shrinking", square_grow),
    ("a light fading in", "a light fading out", light_fade_in),
    ("a bar rising up", "a bar falling down", bar_rise),
]
SINGLES: Dict[str, Callable] = {
    "horizontal stripes drifting": lambda r, t, h, w: stripes(r, t, h, w, False),
    "vertical stripes drifting": lambda r, t, h, w: stripes(r, t, h, w, True),
    "a checkerboard flickering": checkerboard,
    "a ring pulsing": ring,
}


def classes() -> Dict[str, Callable]:
    out: Dict[str, Callable] = {}
    for a, b, gen in PAIRS:
        out[a], out[b] = gen, _reverse(gen)
    out.update(SINGLES)
    return out


def render(gen: Callable, rng: np.random.Generator) -> Tuple[Frames, float]:
    """One clip with random size, fps, duration and noise. -> frames, fps"""
    w, h = int(rng.integers(48, 97)) * 2, int(rng.integers(36, 73)) * 2   # even, for yuv420p
    fps = float(rng.choice([8, 10, 12, 15, 24, 25, 30]))
    duration = rng.uniform(2.0, 4.0)
    t = np.linspace(0.0, 1.0, max(2, int(round(duration * fps))))        # [T]
    frames = gen(rng, t, h, w)
    frames += rng.normal(0, rng.uniform(0, 12), size=frames.shape[1:])[None]  # fixed sensor pattern
    return np.clip(frames, 0, 255).astype(np.uint8), fps


def encode(frames: Frames, fps: float, path: str) -> None:
    """Pipe raw RGB frames through ffmpeg (H.264, yuv420p) into `path`."""
    t, h, w, _ = frames.shape
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", f"{fps}", "-i", "pipe:", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", "-g", "30", "file:" + os.path.abspath(path)]
    subprocess.run(cmd, input=frames.tobytes(), check=True, capture_output=True)


def make_demo(out: str, per_class: int = 24, seed: int = 0, progress: bool = True) -> Dict[str, object]:
    """Write OUT/<class>/<class-slug>_<k>.mp4 and OUT/pairs.json; returns the pairs description."""
    table = classes()
    rng = np.random.default_rng(seed)
    jobs = [(name, k) for name in table for k in range(per_class)]
    for name, k in progress_display(jobs, desc="demo", unit="video", quiet=not progress):
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        frames, fps = render(table[name], np.random.default_rng(rng.integers(1 << 62)))
        encode(frames, fps, os.path.join(folder, f"{name.replace(' ', '_')}_{k:03d}.mp4"))
    meta = {"pairs": [[a, b] for a, b, _ in PAIRS], "singles": list(SINGLES), "per_class": per_class,
            "seed": seed}
    write_json(os.path.join(out, "pairs.json"), meta)
    return meta


def main(argv=None) -> int:
    ap = Parser(prog="python -m extract.synthetic", description=__doc__.splitlines()[0])
    ap.add_argument("out", help="folder to write (one sub-folder per class)")
    ap.add_argument("--per-class", type=int, default=24, help="videos per class (default 24)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_quiet(ap)
    add_examples(ap, ["python -m extract.synthetic videos/", "python -m extract.synthetic videos/ --per-class 6 --seed 1"])
    args = ap.parse_args(argv)
    return exit_status(lambda: _demo(args), out=args.out, interrupted=lambda: f"interrupted: {args.out} is incomplete")


def _demo(args: argparse.Namespace) -> int:
    check_counts(args, "per_class")
    make_demo(args.out, args.per_class, args.seed, progress=not args.quiet)
    print(f"{args.out}: {len(classes())} classes x {args.per_class} videos; pairs in {args.out}/pairs.json")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
