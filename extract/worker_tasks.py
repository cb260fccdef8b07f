"""Functions that run on Dask workers: CLIP is loaded once per worker process, never shipped."""
import os
import threading
from typing import Dict, List, Optional, Tuple

import numpy as np

from clipvid.resources import cpu_count
from extract.decode import iter_samples
from extract.facts import describe_failure

_MODELS: Dict[tuple, object] = {}
_LOCK = threading.Lock()


def _torch_threads(workers_per_host: int, asked: Optional[int] = None) -> int:
    return asked or max(1, cpu_count() // max(1, workers_per_host))


def keep_freed_memory() -> None:
    """Ask glibc to keep big freed blocks for reuse instead of unmapping them.

    Every video allocates the same ~15-60 MB buffers (frames, the float batch, the first conv's
    reordered input); above glibc's 32 MB mmap limit each one came back from the kernel as fresh
    pages: ~15,000 page faults and ~25 ms of system time per video (bench.pipeline). Peak memory
    stays that of one video's buffers, so it does not grow with the collection (bench.memory)."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to tune
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 1 << 30)
    libc.mallopt(m_trim_threshold, (1 << 31) - 1)


def _worker_index() -> int:
    """This Dask worker's number (a LocalCluster names its workers 0, 1, ...), else the process id."""
    try:
        from distributed import get_worker
        return int(get_worker().name)
    except (ImportError, ValueError, TypeError):
        return os.getpid()


def get_model(spec: str, device: str, workers_per_host: int = 1, torch_threads: Optional[int] = None):
    """This process's CLIP for `spec`, loaded on first use (threads of a worker share it)."""
    key = (spec, device)
    with _LOCK:
        if key not in _MODELS:
            import torch
            from extract.clip_model import load_clip
            from clipvid.device import resolve_device
            keep_freed_memory()
            torch.set_num_threads(_torch_threads(workers_per_host, torch_threads))
            dev = resolve_device(device, "embed")
            if dev.type == "cuda" and dev.index is None and torch.cuda.device_count() > 1:
                # Spread the workers of one host over its GPUs: several workers per GPU is the default.
                dev = torch.device("cuda", _worker_index() % torch.cuda.device_count())
            _MODELS[key] = load_clip(spec, dev)
        return _MODELS[key]


def text_task(spec: str, device: str, workers_per_host: int, torch_threads: Optional[int], names: List[str],
              templates: List[str]) -> np.ndarray:
    """Prompt-ensembled class embeddings [C, D] float16 (also warms this worker's model)."""
    from extract.clip_model import class_text_embeddings
    return class_text_embeddings(get_model(spec, device, workers_per_host, torch_threads), names, templates)


class OutOfGpuMemory(RuntimeError):
    """The GPU had no room even for one frame at a time: a resource error, never the video's fault."""


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA (or MPS) out-of-memory error, whatever torch version raised it."""
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def embed_sample(model, sample, batch_size: int, geometry=None) -> np.ndarray:
    """[N, D] float16 embeddings of a Sample's rows; a frame that several rows show is embedded once
    (a 2 s clip at 12 fps has 24 frames for 100 rows: a quarter of the work). When the GPU runs out
    of memory (other workers or jobs share it) the batch is halved and tried again, down to one frame."""
    from extract.clip_model import encode_frames
    while True:
        try:
            # [n_distinct, S, S, 3] at the backbone's geometry (None: the sample's first)
            pictures = sample.distinct if geometry is None else sample.pictures[geometry]
            return encode_frames(model, pictures, batch_size)[sample.rows]      # [n_distinct, dim] -> [N, dim]
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            _release_gpu_memory()
            if batch_size <= 1:
                raise OutOfGpuMemory(f"GPU out of memory even one frame at a time ({describe_failure(exc)})")
            batch_size //= 2


def _release_gpu_memory() -> None:
    import torch
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _embedded(vid: str, sample, model, batch_size: int, geometry=None) -> Dict[str, object]:
    """The small dict a video's task returns: its arrays, or its one-line failure reason."""
    if isinstance(sample, Exception):
        return {"id": vid, "error": str(describe_failure(sample))}
    try:
        emb = embed_sample(model, sample, batch_size, geometry)   # [N, D] float16
    except OutOfGpuMemory as exc:   # not the video's fault: left out of the cache, tried again next run
        return {"id": vid, "resource": str(exc)}
    except Exception as exc:   # this video's frames only: its batch-mates go on
        return {"id": vid, "error": f"embedding failed: {describe_failure(exc)}"}
    if not np.isfinite(emb).all():
        return {"id": vid, "error": "CLIP produced non-finite embeddings"}
    info = sample.info
    return {"id": vid, "emb": emb, "t": sample.t, "n_distinct": sample.n_distinct,
            "duration": info.duration, "fps": info.fps, "strategy": sample.strategy, "decoder": sample.decoder}


def videos_task(specs: List[str], device: str, workers_per_host: int, torch_threads: Optional[int],
                items: List[Tuple[str, str]], n: int, batch_size: int, threads: int,
                timeout: float) -> List[Dict[str, Dict[str, object]]]:
    """Decode a few (id, path) videos once and embed them with every backbone of `specs`, each from the
    same frames converted to its own geometry (extract.frames). Per video: {spec: its dict}."""
    models = {spec: get_model(spec, device, workers_per_host, torch_threads) for spec in specs}
    geometries = [m.preprocess.geometry for m in models.values()]
    out: List[Dict[str, Dict[str, object]]] = [{} for _ in items]
    # Each sample is embedded as soon as it is ready and then dropped: one video's frames at a time.
    for i, sample in iter_samples([path for _, path in items], n, threads=threads, timeout=timeout,
                                  geometries=geometries):
        for spec, model in models.items():
            out[i][spec] = _embedded(items[i][0], sample, model, batch_size, model.preprocess.geometry)
    return out


def task_failure(exc: BaseException) -> str:
    """One line for a video whose whole Dask task failed (it was already retried alone)."""
    if type(exc).__name__ == "KilledWorker":
        return "the worker sampling it died (out of memory or crashed), also when retried"
    return str(describe_failure(exc))


def warm(specs: List[str], device: str, workers_per_host: int, torch_threads: Optional[int] = None) -> str:
    """Load every backbone of a run ahead of the first video (called on every worker at start-up); returns
    the one line saying where and in what precision this worker embeds."""
    import dataclasses
    from clipvid.device import resolve
    models = [get_model(spec, device, workers_per_host, torch_threads) for spec in specs]
    decision = resolve(device, "embed")
    if models[0].device.type == "cuda":
        import torch
        decision = dataclasses.replace(decision, device=str(models[0].device),
                                       name=torch.cuda.get_device_name(models[0].device))
    return decision.line("extract")
