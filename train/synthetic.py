"""Write synthetic caches (trajectory classes with time-reversed twins) for tests and benchmarks."""
import argparse
import sys
import time
from typing import List, Optional

import numpy as np

from cache import schema as S
from cache.helptext import add_examples
from cache.writer import CacheWriter


def class_names(num_classes: int, num_pairs: int) -> List[str]:
    """'<p> forwards' / '<p> backwards' for the reversed pairs, then 'still <c>' for the rest."""
    names = []
    for p in range(num_pairs):
        names += [f"motion {p} forwards", f"motion {p} backwards"]
    return names + [f"still {c}" for c in range(num_classes - 2 * num_pairs)]


def synthetic_videos(num_classes: int, per_class: int, frames: int, dim: int, seed: int,
                     num_pairs: Optional[int] = None, noise: float = 0.3):
    """-> (names, text [C, D], emb [V, N, D] float16, labels [V]).

    A pair's two classes walk the same straight path A->B through embedding space in opposite
    directions, so every order-blind statistic has the same distribution for both; other classes
    wobble around a point near their own text embedding, so zero-shot baselines get those right.
    """
    rng = np.random.default_rng(seed)
    pairs = num_classes // 4 if num_pairs is None else num_pairs
    names = class_names(num_classes, pairs)
    text = rng.standard_normal((num_classes, dim)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    labels = np.repeat(np.arange(num_classes), per_class)
    s = np.linspace(0.0, 1.0, frames, dtype=np.float32)[:, None]                 # [N, 1]
    emb = np.empty((len(labels), frames, dim), np.float16)
    ends = {}
    for p in range(pairs):
        mid = text[2 * p] + text[2 * p + 1]                                       # equidistant from both texts
        ends[p] = (mid + 1.5 * rng.standard_normal(dim) / np.sqrt(dim),
                   mid - 1.5 * rng.standard_normal(dim) / np.sqrt(dim))
    for v, c in enumerate(labels):
        jitter = noise * rng.standard_normal((frames, dim)) / np.sqrt(dim)       # [N, D]
        offset = noise * rng.standard_normal(dim) / np.sqrt(dim)                 # per-video shift
        if c < 2 * pairs:
            a, b = ends[c // 2]
            path = (1 - s) * a + s * b if c % 2 == 0 else s * a + (1 - s) * b    # [N, D]
        else:
            wobble = np.sin(2 * np.pi * (s + rng.random())) * rng.standard_normal(dim) / np.sqrt(dim)
            path = text[c] + 0.5 * wobble
        emb[v] = (path + offset + jitter).astype(np.float16)
    return names, text, emb, labels


def write_synthetic_cache(path: str, num_classes: int = 8, per_class: int = 30, frames: int = 32,
                          dim: int = 64, seed: int = 0, num_pairs: Optional[int] = None,
                          split_column: bool = False, unlabelled: int = 0, noise: float = 0.3) -> List[str]:
    """Write a synthetic cache to `path` through the real CacheWriter; returns the class names."""
    names, text, emb, labels = synthetic_videos(num_classes, per_class, frames, dim, seed, num_pairs, noise)
    settings = S.make_settings(f"synthetic:{seed}", f"synthetic-{seed}-{dim}", True, dim, frames,
                               {"kind": "synthetic"}, ["{}"])
    rng = np.random.default_rng(seed + 1)
    times = np.linspace(0.0, 1.0, frames, dtype=np.float32)
    writer = CacheWriter(path, settings)
    try:
        writer.set_classes(names, text)
        for v, c in enumerate(labels):
            split = ("test" if rng.random() < 0.25 else "train") if split_column else ""
            writer.add_video(f"{names[c]}/video {v:05d}.mp4", emb[v], times, names[c], split=split,
                             n_distinct=frames, duration=1.0, fps=frames)
        for u in range(unlabelled):
            writer.add_video(f"unlabelled/{u}.mp4", emb[u % len(emb)], times, None)
    finally:
        writer.close()
    return names


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.synthetic",
                                 description="Write a synthetic clipvid cache (for tests and benchmarks).")
    ap.add_argument("out", metavar="CACHE.h5", help="cache file to write")
    ap.add_argument("--classes", type=int, default=8, help="classes (default 8)")
    ap.add_argument("--per-class", type=int, default=30, help="videos per class (default 30)")
    ap.add_argument("--frames", type=int, default=32, help="rows per video, N (default 32)")
    ap.add_argument("--dim", type=int, default=64, help="embedding width, D (default 64)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_examples(ap, ["python -m train.synthetic syn.h5", "python -m train.synthetic big.h5 --classes 20 --per-class 500"])
    args = ap.parse_args(argv)
    start = time.perf_counter()
    write_synthetic_cache(args.out, args.classes, args.per_class, args.frames, args.dim, args.seed)
    print(f"wrote {args.out}: {args.classes * args.per_class} videos x {args.frames} x {args.dim} "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
