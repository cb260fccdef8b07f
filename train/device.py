"""torch and BLAS CPU threads for training and scoring heads (the device itself: clipvid/device.py)."""
import torch

from clipvid.resources import cpu_count


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
    if device.type != "cpu":
        return torch.get_num_threads()
    threads = requested if requested > 0 else (1 if work < SMALL_WORK else cpu_count())
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
