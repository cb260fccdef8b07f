"""The CPUs and memory this process may use: affinity and cgroup quotas (Slurm, docker, Kubernetes)."""
import math
import os
import tempfile
from typing import Optional

CGROUP = "/sys/fs/cgroup"
FALLBACK_MEMORY = 4 << 30   # when nothing says how much memory there is


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _own_paths(controller: str, root: str) -> list:
    """Folders that may hold this process's cgroup files for `controller`, its own cgroup first: on a
    host (Slurm) that is a sub-folder named in /proc/self/cgroup; in a container, the root itself."""
    text = _read("/proc/self/cgroup") or ""
    found = []
    for line in text.splitlines():
        _, names, path = (line.split(":", 2) + ["", ""])[:3]
        if names == "" and path.startswith("/"):                       # v2: "0::/path"
            found.append(os.path.join(root, path.lstrip("/")))
        elif controller in names.split(",") and path.startswith("/"):  # v1: "4:memory:/path"
            found += [os.path.join(root, names, path.lstrip("/")), os.path.join(root, controller, path.lstrip("/"))]
    found += [root, os.path.join(root, controller)]
    return list(dict.fromkeys(os.path.normpath(p) for p in found))


def _first(controller: str, root: str, name: str) -> Optional[str]:
    for folder in _own_paths(controller, root):
        text = _read(os.path.join(folder, name))
        if text is not None:
            return text
    return None


def quota_cpus(cpu_max: Optional[str], cfs_quota: Optional[str] = None, cfs_period: Optional[str] = None) -> Optional[float]:
    """CPUs a cgroup quota allows: v2 `cpu.max` ("200000 100000" or "max 100000"), else v1's
    cfs_quota_us / cfs_period_us (-1 is no quota); None when unlimited or unknown."""
    try:
        if cpu_max:
            quota, period = (cpu_max.split() + ["100000"])[:2]
            return None if quota == "max" else int(quota) / int(period)
        if cfs_quota and cfs_period and int(cfs_quota) > 0:
            return int(cfs_quota) / int(cfs_period)
    except ValueError:
        pass
    return None


def cpu_count(root: str = CGROUP) -> int:
    """CPUs this process may run on: its affinity mask (taskset, Slurm, docker --cpuset-cpus), capped
    by a cgroup CPU quota (docker --cpus, Kubernetes limits) rounded up; at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):   # macOS has no affinity masks
        cpus = os.cpu_count() or 1
    quota = quota_cpus(_first("cpu", root, "cpu.max"), _first("cpu", root, "cpu.cfs_quota_us"),
                       _first("cpu", root, "cpu.cfs_period_us"))
    if quota:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def _limit(text: Optional[str]) -> Optional[int]:
    """A cgroup memory limit in bytes; None for "max" or v1's near-2**63 "no limit"."""
    if not text or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value < 1 << 60 else None


def _meminfo_available() -> Optional[int]:
    text = _read("/proc/meminfo")
    for line in (text or "").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    try:   # macOS and other systems without /proc: physical memory (an upper bound)
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def available_memory(root: str = CGROUP) -> int:
    """Bytes this process may still use now: what the kernel has available, less whatever of its
    cgroup's memory limit (v2 memory.max, v1 memory.limit_in_bytes) is already in use."""
    free = _meminfo_available()
    for limit_file, usage_file in (("memory.max", "memory.current"),
                                   ("memory.limit_in_bytes", "memory.usage_in_bytes")):
        limit = _limit(_first("memory", root, limit_file))
        if limit is not None:
            used = _limit(_first("memory", root, usage_file)) or 0
            room = max(0, limit - used)
            free = room if free is None else min(free, room)
            break
    return FALLBACK_MEMORY if free is None else free


def spill_dir(tmp_dir: Optional[str] = None, beside: Optional[str] = None) -> str:
    """Where temporary spill files go: --tmp-dir (or $CLIPVID_TMPDIR) when given, else the folder of
    `beside` (the cache: a disk that holds it), else the system's temporary folder. Never a memory
    filesystem by default: /tmp is tmpfs on many distributions."""
    for candidate in (tmp_dir, os.environ.get("CLIPVID_TMPDIR"),
                      os.path.dirname(os.path.abspath(beside)) if beside else None):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return tempfile.gettempdir()


TMP_DIR_HELP = ("folder for temporary spill files, which grow with the cache (default: $CLIPVID_TMPDIR, else "
                "beside the cache when writable, else the system's temporary folder)")


def use_tmp_dir(path: Optional[str]) -> None:
    """Make --tmp-dir the spill folder of this process and its children; ValueError when unusable."""
    if not path:
        return
    if not os.path.isdir(path) or not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{path}: not a writable folder")
    os.environ["CLIPVID_TMPDIR"] = os.path.abspath(path)
