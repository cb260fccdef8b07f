"""How many Dask workers, and tasks in each, a local extraction starts on this machine."""
from typing import List, Optional, Tuple

from clipvid.device import parse, probe
from clipvid.resources import cpu_count

MAX_CPU_WORKERS = 8
# Worker processes per GPU at most (each holds its own CLIP there). PyAV holds the GIL while it
# decodes, so each worker runs one task at a time and a core left over goes to libavcodec's own
# threads (extract.pipeline); bench.gpu measures the layout.
GPU_WORKERS = 16
# GPU memory allowed per worker: CUDA's context, CLIP's half weights and one 100-frame batch
# (ViT-L/14 takes about 2.5 GiB of it, ViT-B/32 about 1), so a card with little memory FREE (a
# shared server's other jobs hold the rest) gets fewer workers.
GIB_PER_GPU_WORKER = 3


def cuda_count() -> int:
    """GPUs torch can use here (CUDA or ROCm; WSL2 included), counted without opening them."""
    return probe(detail=False).cuda_devices


def gpu_memory_gib(gpus: List[int]) -> List[float]:
    """FREE memory of each listed GPU, from NVML when it imports (this process then holds no CUDA
    context), else from torch."""
    try:
        import pynvml
        pynvml.nvmlInit()
        try:
            return [pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i)).free / 2 ** 30
                    for i in gpus]
        finally:
            pynvml.nvmlShutdown()
    except Exception:   # no NVML bindings (or ROCm): ask torch (which starts CUDA in this process)
        import torch
        return [torch.cuda.mem_get_info(i)[0] / 2 ** 30 for i in gpus]


def gpu_workers(gpus: int, cores: int, memory_gib: List[float]) -> int:
    """Workers for `gpus` GPUs: one per core (every core decodes), at most GPU_WORKERS per GPU and
    as many as the smallest GPU's memory holds at GIB_PER_GPU_WORKER each; never fewer than the GPUs."""
    per_gpu = min(GPU_WORKERS, max(1, int(min(memory_gib or [0.0]) // GIB_PER_GPU_WORKER)))
    return max(gpus, min(cores, per_gpu * gpus))


def default_layout(device: str, workers: Optional[int], threads: Optional[int]) -> Tuple[int, int]:
    """(workers, threads per worker): one single-threaded worker per core on CPU; with GPUs, every
    core decoding while the GPUs embed (decoding is what a GPU waits for), in single-threaded
    processes, since one process's threads share one GIL and PyAV holds it while it decodes."""
    kind, index = parse(device)
    gpus = cuda_count() if kind in ("auto", "cuda") else 0
    used = [index] if index is not None else list(range(gpus))   # --device cuda:N: that GPU alone
    cores = cpu_count()
    if used:
        workers = workers or gpu_workers(len(used), cores, gpu_memory_gib(used))
        return workers, threads or 1
    # Each worker holds its own CLIP (ViT-B/32: ~0.6 GB); past 8 workers, more torch threads per
    # worker serve a big CPU box better than more copies of the model.
    return workers or max(1, min(cores, MAX_CPU_WORKERS)), threads or 1
