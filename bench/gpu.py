"""bench.gpu: the GPU path: CLIP fp16/fp32 images/s, whether decoding keeps the GPU fed, training from disk.

Usage: python -m bench.gpu [--clips 384] [--videos 20000] [--device cuda]. Needs a CUDA GPU (exit 2
without one, results untouched; `--device cpu` with small sizes only checks that the bench itself runs). Three parts:
  embed   encode_frames images/s by batch, fp16 (as extract loads CLIP on a GPU) and fp32;
  fed     extraction videos/s (python -m extract's run(), ViT-B/32, N=100) over --clips generated
          10 s 640x360 H.264 clips, for extract's default GPU layout and others, beside the
          decode-only rate (every core decoding) and the embed-only rate (the GPU alone);
          every layout and the default in one run, each with and without the cluster start and model
          loads (PyAV decodes, one task per worker process, since sampler version 2; fed_pyav holds
          older runs' in-process figures); `--parts` measures only those parts (the result file then holds only them);
  train   a Kinetics-shaped synthetic cache of --videos videos: the same transformer steps from
          memory and from disk (budget forced to half), and `python -m train` wall seconds for the
          transformer (1 epoch), meanpool and the linear probe on the GPU.
Writes bench/results/gpu.json; the cache and clips live under $CLIPVID_SCALE_DIR (default a temp dir)
and are deleted afterwards.
"""
import argparse
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Tuple

from bench import common

N = 100
SPEC = "random:ViT-B/32"
BATCHES = (1, 32, 100, 256)
# Distinct lavfi sources, so the clips are not one picture repeated (testsrc2 alone is easy to encode).
SOURCES = ("testsrc2", "testsrc", "smptebars", "rgbtestsrc", "mandelbrot", "yuvtestsrc")
RESULT_KEYS = frozenset({"model", "frames", "gpu_name", "embed", "fed", "fed_pyav", "train", "method"})
HEADLINES = ("default_layout_videos_per_s", "linear_vs_meanpool", "ooc_overhead")


def embed_rates(spec: str, device: str, images: int) -> Dict[str, Dict[str, float]]:
    """encode_frames images/s per batch size, fp16 then fp32 (bench.embed's measure, at this bench's batches)."""
    from bench.embed import precision_rates
    out = precision_rates(spec, device, images, BATCHES)
    print(f"gpu embed: {out}", flush=True)
    return out


def make_clips(root: str, count: int) -> List[str]:
    """`count` 10 s 640x360 30 fps H.264 clips: one per lavfi source, then hard links to them."""
    from extract.ffmpeg_bin import ffmpeg_exe
    import subprocess
    os.makedirs(root, exist_ok=True)

    def one(src: str) -> str:
        path = os.path.join(root, f"base_{src}.mp4")
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
                        "-i", f"{src}=size=640x360:rate=30", "-t", "10", "-c:v", "libx264", "-preset", "veryfast",
                        "-pix_fmt", "yuv420p", path], check=True)
        return path
    with ThreadPoolExecutor(len(SOURCES)) as pool:
        bases = list(pool.map(one, SOURCES))
    clips = []
    for i in range(count):
        path = os.path.join(root, f"clip_{i:05d}.mp4")
        os.link(bases[i % len(bases)], path)
        clips.append(path)
    return clips


def _rows_sampled(path: str) -> int:
    from extract.decode import sample_video
    return len(sample_video(path, N, threads=1).rows)


def decode_only(files: List[str], workers: int) -> float:
    """Videos/s of `workers` single-threaded samplings at once, in processes (PyAV holds the GIL, as
    the extraction layout's single-task workers do): what the CPU can feed at most."""
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_rows_sampled, files[:workers]))          # processes started, libraries loaded
        start = time.perf_counter()
        assert all(rows == N for rows in pool.map(_rows_sampled, files))
        return len(files) / (time.perf_counter() - start)


def embed_only(files: List[str], spec: str, device: str, videos: int) -> float:
    """Videos/s of the GPU embedding already decoded samples, one video's frames per call as a worker does."""
    import torch
    from extract.clip_model import load_clip
    from extract.decode import sample_video
    from extract.worker_tasks import embed_sample
    model = load_clip(spec, torch.device(device))
    samples = [sample_video(f, N) for f in files[:len(SOURCES)]]
    embed_sample(model, samples[0], 100)
    start = time.perf_counter()
    for i in range(videos):
        embed_sample(model, samples[i % len(samples)], 100)
    return videos / (time.perf_counter() - start)


class Utilisation:
    """GPU utilisation (%) sampled every 0.1 s on a thread, with the time of each sample."""

    def __init__(self):
        self.samples: List[Tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import torch
        while not self._stop.is_set():
            try:
                self.samples.append((time.perf_counter(), int(torch.cuda.utilization())))
            except Exception:   # no NVML here: the figure is left out, the bench goes on
                return
            self._stop.wait(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def mean_over(self, start: float, end: float) -> Optional[float]:
        vals = [u for t, u in self.samples if start <= t <= end]
        return sum(vals) / len(vals) if vals else None


def layouts_for(names: Optional[str], cores: int) -> Dict[str, Tuple[Optional[int], Optional[int]]]:
    """{name: (workers, tasks each)}: 'default' is extract's own choice, 'WxT' a fixed one."""
    if not names:   # the default, the one-worker-per-GPU layout extract used before, other splits of the cores
        names = f"default,1x4,1x{cores},2x{max(1, cores // 2)},{max(1, cores // 2)}x2"
    return {n: (None, None) if n == "default" else tuple(int(x) for x in n.split("x")) for n in names.split(",")}


def fed(files: List[str], spec: str, device: str, layouts: Optional[str] = None,
        out: Optional[Dict[str, object]] = None) -> Dict[str, object]:
    """Extraction videos/s per layout beside the decode-only and embed-only ceilings, filled into `out`
    as measured (a run stopped by its time limit keeps the layouts it finished)."""
    from bench.pipeline import extraction_rates
    from extract.layout import default_layout
    from clipvid.resources import cpu_count
    cores = cpu_count()
    out = {} if out is None else out
    out.update({"clips": len(files), "cores": cores, "default_layout": list(default_layout(device, None, None)),
                "decoder": "PyAV, one task per worker process (sampler version 2)"})
    out["decode_only_videos_per_s"] = decode_only(files, cores)
    out["embed_only_videos_per_s"] = embed_only(files, spec, device, min(len(files), 400))
    print(f"gpu fed: ceilings {out}", flush=True)
    out["layouts"] = {}
    for name, (workers, threads) in layouts_for(layouts, cores).items():
        with Utilisation() as util:
            rates = extraction_rates(files, spec, workers, device=device, threads=threads, torch_threads=None)
            end = time.perf_counter()
        rate = rates["videos_per_s"]
        busy = util.mean_over(end - len(files) / rate, end) if device == "cuda" else None
        ceiling = min(out["decode_only_videos_per_s"], out["embed_only_videos_per_s"])
        out["layouts"][name] = {"workers_threads": [workers, threads], "videos_per_s": rate,
                                "videos_per_s_with_start": rates["videos_per_s_with_start"],
                                "of_ceiling": rate / ceiling, "gpu_busy_percent": busy}
        print(f"gpu fed: {name}: {out['layouts'][name]}", flush=True)
    return out


def training(root: str, videos: int, steps: int, device: str) -> Dict[str, object]:
    """Out-of-core overhead of the same steps on the GPU, and the user's train commands' wall seconds."""
    from bench.train_scale import _timed, build, ooc_overhead
    path = os.path.join(root, f"scale_{videos}.h5")
    out: Dict[str, object] = {"videos": videos, "build_seconds": build(videos, root)}
    out["cache_gib"] = os.path.getsize(path) / 2 ** 30
    out["ooc"] = ooc_overhead(path, steps, device)
    print(f"gpu train: ooc {out['ooc']}", flush=True)
    base = ["-m", "train", path, "--quiet", "--device", device, "--out", os.path.join(root, "runs")]
    out["transformer_1_epoch"] = _timed([*base, "--head", "transformer", "--epochs", "1"])
    out["meanpool"] = _timed([*base, "--head", "meanpool"])
    out["linear"] = _timed([*base, "--head", "linear"])
    out["linear_vs_meanpool"] = out["linear"]["seconds"] / out["meanpool"]["seconds"]
    return out


def main(argv: List[str] = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.gpu")
    ap.add_argument("--clips", type=int, default=384)
    ap.add_argument("--videos", type=int, default=20_000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--images", type=int, default=4000)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--model", default=SPEC)
    ap.add_argument("--layouts", help="extraction layouts to time, e.g. default,1x4,8x2 (default: five)")
    ap.add_argument("--parts", default="embed,fed,train")
    args = ap.parse_args(argv)
    import torch
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench.gpu: torch sees no CUDA GPU here; nothing measured (bench/results/gpu.json left as it is)")
        return {}
    run = common.Run("gpu", RESULT_KEYS)
    res: Dict[str, object] = {"model": args.model, "frames": N,
                              "gpu_name": torch.cuda.get_device_name(0) if args.device == "cuda" else None}
    scale_dir = os.environ.get("CLIPVID_SCALE_DIR")
    if scale_dir:
        os.makedirs(scale_dir, exist_ok=True)
    root = tempfile.mkdtemp(prefix="bench_gpu_", dir=scale_dir)
    parts = {"embed": lambda: embed_rates(args.model, args.device, args.images),
             "fed": lambda: fed(make_clips(os.path.join(root, "clips"), args.clips), args.model, args.device,
                                args.layouts, res.setdefault(key, {})),
             "train": lambda: training(root, args.videos, args.steps, args.device)}
    try:
        for name in args.parts.split(","):
            key = name
            try:   # one part failing on a borrowed machine must not lose the others' figures
                res[key] = parts[name]()
            except Exception as exc:
                res[key] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
                print(f"bench.gpu: {name} failed: {res[key]['error']}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        res["method"] = __doc__.split("\n\n", 1)[1].strip()
        _headlines(run, res)
        run.write(res, state="warm: clips generated and CLIP loaded before each timed part; ooc disk run cold",
                  repeats=1)
    return res


def _headlines(run: common.Run, res: Dict[str, object]) -> None:
    """The default layout's rate (the layout extract picks on this machine), and the GPU training goals."""
    for key in ("fed_pyav", "fed"):
        default = res.get(key, {}).get("layouts", {}).get("default")
        if default:
            run.headline("default_layout_videos_per_s", [default["videos_per_s"]])
    train = res.get("train", {})
    if "linear_vs_meanpool" in train:
        run.headline("linear_vs_meanpool", [train["linear_vs_meanpool"]])
    if "ooc_overhead" in train.get("ooc", {}):
        run.headline("ooc_overhead", [train["ooc"]["ooc_overhead"]])


if __name__ == "__main__":
    common.exit_on_help(__doc__)
    raise SystemExit(0 if main() else 2)
