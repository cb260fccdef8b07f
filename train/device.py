"""The one place that decides which torch device clipvid runs on."""
import torch


def resolve_device(choice: str = "auto") -> torch.device:
    """'auto' picks CUDA when present, else CPU; 'cuda' without a GPU is an error."""
    choice = (choice or "auto").lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA GPU")
    if choice not in ("cpu",) and not choice.startswith("cuda"):
        raise ValueError(f"unknown --device {choice!r}; use auto, cpu or cuda")
    return torch.device(choice)


def amp_dtype(device: torch.device):
    """The mixed-precision dtype for `device`: bfloat16 (or float16 on older GPUs) on CUDA, None on CPU."""
    if device.type != "cuda":
        return None  # CPU stays float32 so runs repeat bit for bit
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device):
    """A context that runs the enclosed forward passes in `amp_dtype(device)`, or does nothing on CPU."""
    import contextlib
    dtype = amp_dtype(device)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def one_blas_thread():
    """A context in which numpy's BLAS runs on one thread. Beside torch's OpenMP pool (also one thread per
    core) a multi-threaded OpenBLAS oversubscribes the cores: a [100, 512] x [512, 400] product took
    25-50 ms instead of 0.5-1 ms on 2 busy cores (bench/PERFORMANCE.md, Kinetics scale)."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(1, user_api="blas")


# Below this many frame-embedding values per training epoch, one CPU thread beats several: the
# tensors are small, and OpenMP threads spin-waiting on a busy machine cost more than they save.
SMALL_WORK = 50_000_000


def set_cpu_threads(device: torch.device, requested: int = 0, work: int = 0) -> int:
    """Set torch's CPU thread count: `requested` if > 0, else 1 for small work and all cores otherwise."""
    import os
    if device.type != "cpu":
        return torch.get_num_threads()
    threads = requested if requested > 0 else (1 if work < SMALL_WORK else (os.cpu_count() or 1))
    torch.set_num_threads(threads)
    return threads


class torch_threads:
    """A context that runs torch's CPU work on `n` threads, restoring the count after (a no-op for n <= 0)."""

    def __init__(self, n: int):
        self.n, self.before = n, torch.get_num_threads()

    def __enter__(self) -> "torch_threads":
        if self.n > 0:
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.before)
