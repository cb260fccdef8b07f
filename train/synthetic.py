"""Write synthetic caches (trajectory classes with time-reversed twins) for tests and benchmarks."""
import os
import sys
import time
from typing import List, Optional

import numpy as np

from cache import schema as S
from clipvid.helptext import add_examples
from clipvid.options import Parser
from cache.writer import CacheWriter


def class_names(num_classes: int, num_pairs: int) -> List[str]:
    """'<p> forwards' / '<p> backwards' for the reversed pairs, then 'still <c>' for the rest."""
    names = []
    for p in range(num_pairs):
        names += [f"motion {p} forwards", f"motion {p} backwards"]
    return names + [f"still {c}" for c in range(num_classes - 2 * num_pairs)]


def _class_setup(num_classes: int, dim: int, rng: np.random.Generator, num_pairs: Optional[int]):
    pairs = num_classes // 4 if num_pairs is None else num_pairs
    names = class_names(num_classes, pairs)
    text = rng.standard_normal((num_classes, dim)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    ends = {}
    for p in range(pairs):
        mid = text[2 * p] + text[2 * p + 1]                                       # equidistant from both texts
        ends[p] = (mid + 1.5 * rng.standard_normal(dim) / np.sqrt(dim),
                   mid - 1.5 * rng.standard_normal(dim) / np.sqrt(dim))
    return names, text, ends, pairs


def _video(c: int, text: np.ndarray, ends, pairs: int, s: np.ndarray, jitter: np.ndarray, noise: float,
           rng: np.random.Generator) -> np.ndarray:
    """One video's frames [N, D] float16 of class c, around the given per-frame jitter [N, D]."""
    dim = text.shape[1]
    offset = noise * rng.standard_normal(dim) / np.sqrt(dim)                     # per-video shift
    if c < 2 * pairs:
        a, b = ends[c // 2]
        path = (1 - s) * a + s * b if c % 2 == 0 else s * a + (1 - s) * b        # [N, D]
    else:
        wobble = np.sin(2 * np.pi * (s + rng.random())) * rng.standard_normal(dim) / np.sqrt(dim)
        path = text[c] + 0.5 * wobble
    return (path + offset + jitter).astype(np.float16)


def synthetic_videos(num_classes: int, per_class: int, frames: int, dim: int, seed: int,
                     num_pairs: Optional[int] = None, noise: float = 0.3):
    """-> (names, text [C, D], emb [V, N, D] float16, labels [V]).

    A pair's two classes walk the same straight path A->B through embedding space in opposite
    directions, so every order-blind statistic has the same distribution for both; other classes
    wobble around a point near their own text embedding, so zero-shot baselines get those right.
    """
    rng = np.random.default_rng(seed)
    names, text, ends, pairs = _class_setup(num_classes, dim, rng, num_pairs)
    labels = np.repeat(np.arange(num_classes), per_class)
    s = np.linspace(0.0, 1.0, frames, dtype=np.float32)[:, None]                 # [N, 1]
    emb = np.empty((len(labels), frames, dim), np.float16)
    for v, c in enumerate(labels):
        jitter = noise * rng.standard_normal((frames, dim)) / np.sqrt(dim)       # [N, D]
        emb[v] = _video(c, text, ends, pairs, s, jitter, noise, rng)
    return names, text, emb, labels


def _block(labels: np.ndarray, text: np.ndarray, ends, pairs: int, s: np.ndarray, bank: np.ndarray,
           rng: np.random.Generator, noise: float = 0.3) -> np.ndarray:
    """Frames [b, N, D] float16 of the videos with these labels, vectorised over the block."""
    import torch
    b, (n, dim) = len(labels), bank.shape[1:]
    shift = rng.integers(n, size=b)[:, None]
    x = bank[rng.integers(len(bank), size=b)[:, None], (np.arange(n)[None, :] + shift) % n]  # [b, N, D] jitter
    x += (noise * rng.standard_normal((b, 1, dim)) / np.sqrt(dim)).astype(np.float32)
    moving = labels < 2 * pairs
    if moving.any():
        pair = labels[moving] // 2
        a = np.stack([ends[p][0] for p in range(pairs)])[pair][:, None].astype(np.float32)   # [m, 1, D]
        z = np.stack([ends[p][1] for p in range(pairs)])[pair][:, None].astype(np.float32)
        t = np.where((labels[moving] % 2 == 0)[:, None, None], s[None], 1 - s[None])         # [m, N, 1]
        _add_to(x, moving, (1 - t) * a + t * z)
    still = ~moving
    if still.any():
        m = int(still.sum())
        wave = np.sin(2 * np.pi * (s[None] + rng.random((m, 1, 1))))                        # [m, N, 1]
        _add_to(x, still, text[labels[still]][:, None] + (0.5 * wave * rng.standard_normal((m, 1, dim))
                                                          / np.sqrt(dim)).astype(np.float32))
    return torch.from_numpy(x).half().numpy()  # numpy's float16 cast is several times slower (same rounding)


def _add_to(x: np.ndarray, rows: np.ndarray, value: np.ndarray) -> None:
    """x[rows] += value, in place when every row is meant (no copy of a 100 MB block)."""
    if rows.all():
        x += value
    else:
        x[rows] += value


BANK = 256  # noise patterns the streaming writer reuses (fresh noise would dominate the build time)


def stream_synthetic_cache(path: str, videos: int, num_classes: int = 400, frames: int = 100, dim: int = 512,
                           seed: int = 0, split=(0.8, 0.1, 0.1), block: int = 512, progress: bool = True) -> None:
    """Write a large synthetic cache block by block, straight into shards of the current layout (cache.bulk).

    Memory stays at one block whatever `videos` is; the per-frame jitter comes from a bank of
    patterns (each video draws one, rolled in time by a random amount). Classes are contiguous in
    cache order, as an extraction of a folder per class leaves them; splits are drawn per video.
    """
    from cache.bulk import write_cache
    from clipvid.progress import progress as progress_display
    rng = np.random.default_rng(seed)
    names, text, ends, pairs = _class_setup(num_classes, dim, rng, None)
    bank = (0.3 * rng.standard_normal((BANK, frames, dim)) / np.sqrt(dim)).astype(np.float32)  # [M, N, D]
    s = np.linspace(0.0, 1.0, frames, dtype=np.float32)[:, None]
    labels = (np.arange(videos) * num_classes // videos).astype(np.int32)
    splits = rng.choice(np.array(["train", "val", "test"], dtype=object), size=videos, p=split)
    settings = S.make_settings(f"synthetic:{seed}", f"synthetic-{seed}-{dim}", True, dim, frames,
                               {"kind": "synthetic-stream"}, ["{}"])
    times = np.linspace(0, 1, frames, dtype=np.float32)

    def blocks():
        for start in progress_display(range(0, videos, block), desc=f"writing {os.path.basename(path)}",
                                      unit="block", quiet=not progress):
            stop = min(videos, start + block)
            lab = labels[start:stop]
            yield (_block(lab, text, ends, pairs, s, bank, rng), times,
                   {"id": [f"{names[c]}/video {v:07d}.mp4" for v, c in zip(range(start, stop), lab)],
                    "label": lab, "split": splits[start:stop], "n_distinct": np.full(stop - start, frames),
                    "duration": np.ones(stop - start), "fps": np.full(stop - start, frames)})
    write_cache(path, settings, names, text, blocks(), total=videos)


def write_synthetic_cache(path: str, num_classes: int = 8, per_class: int = 30, frames: int = 32,
                          dim: int = 64, seed: int = 0, num_pairs: Optional[int] = None,
                          split_column: bool = False, unlabelled: int = 0, noise: float = 0.3,
                          row_order_seed: Optional[int] = None) -> List[str]:
    """Write a synthetic cache to `path` through the real CacheWriter; returns the class names.

    `row_order_seed` writes the same videos in a shuffled row order (as a re-extraction would)."""
    names, text, emb, labels = synthetic_videos(num_classes, per_class, frames, dim, seed, num_pairs, noise)
    settings = S.make_settings(f"synthetic:{seed}", f"synthetic-{seed}-{dim}", True, dim, frames,
                               {"kind": "synthetic"}, ["{}"])
    rng = np.random.default_rng(seed + 1)
    times = np.linspace(0.0, 1.0, frames, dtype=np.float32)
    writer = CacheWriter(path, settings)
    try:
        writer.set_classes(names, text)
        splits = [("test" if rng.random() < 0.25 else "train") if split_column else "" for _ in labels]
        order = (np.arange(len(labels)) if row_order_seed is None
                 else np.random.default_rng(row_order_seed).permutation(len(labels)))
        for v in order:
            c, split = labels[v], splits[v]
            writer.add_video(f"{names[c]}/video {v:05d}.mp4", emb[v], times, names[c], split=split,
                             n_distinct=frames, duration=1.0, fps=frames)
        for u in range(unlabelled):
            writer.add_video(f"unlabelled/{u}.mp4", emb[u % len(emb)], times, None)
    finally:
        writer.close()
    return names


def main(argv: Optional[List[str]] = None) -> int:
    ap = Parser(prog="python -m train.synthetic",
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
