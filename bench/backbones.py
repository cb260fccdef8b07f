"""bench.backbones: several backbones from one decode, against one extraction per backbone.

Usage: python -m bench.backbones [--videos 96] [--repeats 3]. Two small random-weight backbones (random:tiny's
size, so that decoding dominates on a CPU as it does beside a GPU) are extracted from the same demo clips in
one pass (`--clip-model A --clip-model B`: each video decoded once) and, side by side, by two runs one after
the other. Key `two_backbones_one_pass` = one pass's seconds / the two runs' seconds (goal at most 0.7),
from the first video sent to the last result (start-up and model loading excluded, as a long run pays them
once), runs interleaved, the median of --repeats rounds. Measured for two geometries (centre crop and
SigLIP's squash: the picked frames converted once per geometry, the key) and for one geometry (the
converted frames shared). With a CUDA GPU, each listed backbone's images/s in fp16 (autocast, batch 100) is
added under `gpu_fp16_images_per_s`. Writes bench/results/backbones.json.
"""
import argparse
import os
import tempfile
from typing import Dict, List

from bench import common

N = 100
GOAL = 0.7
RESULT_KEYS = frozenset({"frames", "videos", "workers", "pairs", "two_backbones_one_pass", "gpu_fp16_images_per_s",
                         "goals", "method"})
HEADLINES = ("two_backbones_one_pass", "one_geometry_one_pass")
PAIRS = {"two_geometries": ("random:tiny", "random:open_clip:clipvid-tiny-squash"),
         "one_geometry": ("random:tiny", "random:open_clip:clipvid-tiny")}
# Backbones whose tokenizer ships inside open_clip (nothing to download), at their real sizes.
GPU_BACKBONES = ("random:ViT-B/32", "random:open_clip:ViT-B-16", "random:open_clip:ViT-L-14",
                 "random:open_clip:ViT-B-16/laion2b_s34b_b88k")


def work_seconds(files: List[str], specs: List[str], workers: int) -> float:
    """Seconds from the first video sent to the last result of one extraction of `files` into one fresh
    cache per backbone of `specs` (one decode per video for all of them)."""
    from bench.pipeline import _link_source
    from extract import pipeline, sources
    from extract.backbones import cache_name
    with tempfile.TemporaryDirectory() as tmp:
        src = sources.from_folder(_link_source(files, os.path.join(tmp, "src")))
        opts = pipeline.Options(clip_model=specs[0], frames=N, workers=workers, device="cpu", progress=False,
                                torch_threads=1)
        outs = {s: os.path.join(tmp, cache_name(s)) for s in specs}
        summaries = pipeline.run_many(src, outs, opts, log=lambda *a: None)
        assert all(s.cached == len(files) for s in summaries.values()), [s.failed for s in summaries.values()]
        return max(s.work_seconds for s in summaries.values())


def pair_rounds(files: List[str], a: str, b: str, workers: int, repeats: int) -> List[Dict[str, float]]:
    """Per round (interleaved): one pass with both, a's run, b's run, and the ratio of the first to the other two."""
    rounds = []
    for _ in range(repeats):
        s = {key: work_seconds(files, specs, workers) for key, specs in (("both", [a, b]), ("a", [a]), ("b", [b]))}
        rounds.append({"one_pass_s": s["both"], "a_alone_s": s["a"], "b_alone_s": s["b"],
                       "ratio": s["both"] / (s["a"] + s["b"])})
    return rounds


def gpu_rates() -> Dict[str, float]:
    """images/s in fp16 autocast at batch 100 of each backbone of GPU_BACKBONES (bench.embed's measure)."""
    import torch
    if not torch.cuda.is_available():
        return {}
    from bench.embed import precision_rates
    return {spec: precision_rates(spec, "cuda", 4000, (100,))["fp16"]["100"] for spec in GPU_BACKBONES}


def main(videos: int = 96, repeats: int = 3, workers: int = 2) -> dict:
    run = common.Run("backbones", RESULT_KEYS)
    files = common.demo_videos()
    files = files[::max(1, len(files) // videos)][:videos]
    res: Dict[str, object] = {"frames": N, "videos": len(files), "workers": workers, "pairs": {},
                              "goals": {"two_backbones_one_pass": GOAL}, "method": __doc__.split("\n\n", 1)[1]}
    for name, (a, b) in PAIRS.items():
        print(f"backbones: {name}: {a} + {b}, {len(files)} demo videos", flush=True)
        res["pairs"][name] = {"backbones": [a, b], "rounds": pair_rounds(files, a, b, workers, repeats)}
    ratios = {n: [r["ratio"] for r in p["rounds"]] for n, p in res["pairs"].items()}
    res["two_backbones_one_pass"] = run.headline("two_backbones_one_pass", ratios["two_geometries"])
    run.headline("one_geometry_one_pass", ratios["one_geometry"])
    res["gpu_fp16_images_per_s"] = gpu_rates()
    run.write(res, state="demo clips in the page cache; a fresh cluster per extraction", repeats=repeats)
    rows = [(n, " ".join(f"{r:.2f}" for r in rs)) for n, rs in ratios.items()]
    print(common.table(["pair", "one pass / one run each, per round"], rows))
    print(f"two_backbones_one_pass {res['two_backbones_one_pass']:.2f} (goal at most {GOAL}: "
          f"{common.goal(res['two_backbones_one_pass'], GOAL)})")
    for spec, rate in res["gpu_fp16_images_per_s"].items():
        print(f"gpu fp16 {spec}: {rate:.0f} images/s")
    return res


if __name__ == "__main__":
    common.exit_on_help(__doc__)
    ap = argparse.ArgumentParser(prog="python -m bench.backbones")
    ap.add_argument("--videos", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    main(args.videos, args.repeats, args.workers)
