"""bench.embed: images/s of CLIP ViT-B/32 by batch size on the CPU (and on a GPU when there is one)."""
import time
from typing import Dict, List

import numpy as np

from bench import common

BATCHES = (1, 8, 32, 100)
NOTE_NO_GPU = ("no GPU on the machine this ran on (the project's device tool lent none to this task); "
               "run python -m bench.embed on a CUDA machine to fill in fp32/fp16 figures")
RESULT_KEYS = frozenset({"model", "cpu_threads", "cpu_images_per_s", "cpu_bf16_autocast_images_per_s_batch_32", "gpu",
                         "gpu_note", "method"})
HEADLINES = tuple(f"cpu_images_per_s_batch_{b}" for b in BATCHES)


def _rate(model, batch: int, images: int) -> float:
    return common.spread(_rates(model, batch, images))["median"]


def _rates(model, batch: int, images: int) -> List[float]:
    """images/s of each call of encode_frames on `batch` frames, ~`images` in all (at least 3 calls)."""
    from extract.clip_model import encode_frames
    frames = np.random.default_rng(0).integers(0, 256, (batch, 224, 224, 3), dtype=np.uint8)
    encode_frames(model, frames, batch)                     # warm-up: kernels, buffers
    out = []
    for _ in range(max(3, images // batch)):
        t = time.perf_counter()
        encode_frames(model, frames, batch)
        out.append(batch / (time.perf_counter() - t))
    return out


def precision_rates(spec: str, device: str, images: int, batches=BATCHES) -> Dict[str, Dict[str, float]]:
    """images/s per batch size: on CUDA fp16 (CLIP's own half weights, as extract loads it) then fp32;
    on the CPU fp32 only."""
    import torch
    from extract.clip_model import load_clip
    model = load_clip(spec, torch.device(device))
    out = {"fp16" if device == "cuda" else "fp32": {str(b): _rate(model, b, images) for b in batches}}
    if device == "cuda":
        model.model.float()
        out["fp32"] = {str(b): _rate(model, b, images) for b in batches}
    return out


def main(images: int = 200) -> dict:
    import torch
    from extract.clip_model import load_clip
    run = common.Run("embed", RESULT_KEYS)
    res: Dict[str, object] = {"model": "ViT-B/32 (random weights, same architecture and cost)",
                              "cpu_threads": torch.get_num_threads(), "cpu_images_per_s": {}}
    cpu = load_clip("random:ViT-B/32", torch.device("cpu"))
    for b in BATCHES:
        res["cpu_images_per_s"][str(b)] = run.headline(f"cpu_images_per_s_batch_{b}", _rates(cpu, b, images))
        print(f"embed: cpu batch {b:3d}: {res['cpu_images_per_s'][str(b)]:.1f} images/s", flush=True)
    # bfloat16 autocast uses the CPU's AMX/AVX512-BF16 units where present: a candidate speed-up,
    # not used by extraction (embeddings would differ from fp32 CLIP by ~1e-3 in cosine).
    with torch.autocast("cpu", dtype=torch.bfloat16):
        res["cpu_bf16_autocast_images_per_s_batch_32"] = _rate(cpu, 32, images)
    print(f"embed: cpu bf16 autocast batch 32: {res['cpu_bf16_autocast_images_per_s_batch_32']:.1f} images/s")
    if torch.cuda.is_available():
        rates = precision_rates("random:ViT-B/32", "cuda", 20 * images)
        res["gpu"] = {"name": torch.cuda.get_device_name(0), "fp16_autocast_images_per_s": rates["fp16"],
                      "fp32_images_per_s": rates["fp32"]}
    else:
        res["gpu"] = None
        res["gpu_note"] = NOTE_NO_GPU
    res["method"] = ("encode_frames on random uint8 224x224 frames (normalisation included), after a warm-up; "
                     "images/s: the median over calls")
    run.write(res, state="warm (after one warm-up call)", repeats=max(3, images // BATCHES[-1]))
    print(common.table(["batch", "CPU images/s"], [(b, f"{res['cpu_images_per_s'][str(b)]:.1f}") for b in BATCHES]))
    if res["gpu"] is None:
        print("gpu: none -", NOTE_NO_GPU)
    return res


if __name__ == "__main__":
    common.exit_on_help(__doc__)
    main()
