"""CPUs and memory this process may use (affinity, cgroup quotas) and where spill files go."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from clipvid import resources
from conftest import ROOT


def _cgroup(tmp_path, files: dict) -> str:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return str(tmp_path)


@pytest.mark.parametrize("cpu_max,quota,period,expected", [
    ("200000 100000", None, None, 2.0), ("150000 100000", None, None, 1.5), ("max 100000", None, None, None),
    (None, "50000", "100000", 0.5), (None, "-1", "100000", None), (None, None, None, None), ("junk", None, None, None),
])
def test_quota_cpus_reads_v1_and_v2(cpu_max, quota, period, expected):
    assert resources.quota_cpus(cpu_max, quota, period) == expected


def test_cpu_count_is_capped_by_a_cgroup_quota(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    assert resources.cpu_count(_cgroup(tmp_path / "none", {})) == affinity
    assert resources.cpu_count(_cgroup(tmp_path / "v2", {"cpu.max": "50000 100000"})) == 1      # docker --cpus 0.5
    assert resources.cpu_count(_cgroup(tmp_path / "v1", {"cpu/cpu.cfs_quota_us": "100000",
                                                         "cpu/cpu.cfs_period_us": "100000"})) == 1
    assert resources.cpu_count(_cgroup(tmp_path / "big", {"cpu.max": "6400000 100000"})) == affinity


def test_available_memory_is_capped_by_the_cgroup_limit(tmp_path):
    host = resources.available_memory(_cgroup(tmp_path / "none", {}))
    assert host > 0
    v2 = _cgroup(tmp_path / "v2", {"memory.max": str(1 << 30), "memory.current": str(256 << 20)})
    assert resources.available_memory(v2) == min(host, (1 << 30) - (256 << 20))
    v1 = _cgroup(tmp_path / "v1", {"memory/memory.limit_in_bytes": str(512 << 20),
                                   "memory/memory.usage_in_bytes": str(500 << 20)})
    assert resources.available_memory(v1) == min(host, 12 << 20)
    unlimited = _cgroup(tmp_path / "max", {"memory.max": "max", "memory/memory.limit_in_bytes": str(2 ** 63 - 4096)})
    assert resources.available_memory(unlimited) == host


def _under_taskset(code: str) -> str:
    if not shutil.which("taskset"):
        pytest.skip("no taskset here (util-linux): the CPU-affinity test needs it")
    proc = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_cpu_count_is_honoured_under_taskset():
    """One CPU allowed (as Slurm or docker --cpuset-cpus would): one torch thread for big training work,
    one torch thread per extract worker, and one CPU worker, however many cores the machine has."""
    got = _under_taskset(
        "import torch\n"
        "from clipvid.resources import cpu_count\n"
        "from train.device import SMALL_WORK, set_cpu_threads\n"
        "from extract.layout import default_layout\n"
        "from extract.worker_tasks import _torch_threads\n"
        "print(cpu_count(), set_cpu_threads(torch.device('cpu'), 0, 10 * SMALL_WORK), torch.get_num_threads(),\n"
        "      default_layout('cpu', None, None)[0], _torch_threads(1))\n")
    assert got == ["1", "1", "1", "1", "1"]


def test_spill_files_go_beside_the_cache_or_to_tmp_dir(tmp_path, monkeypatch):
    from train.data import SpillRows
    monkeypatch.setenv("CLIPVID_TMPDIR", "")   # restored after the test, which sets it
    cache_dir, chosen = tmp_path / "cache", tmp_path / "scratch"
    cache_dir.mkdir()
    chosen.mkdir()
    beside = str(cache_dir / "c.h5")

    def folder_of(spill) -> str:
        return os.path.dirname(os.readlink(f"/proc/self/fd/{spill.fd}"))   # unlinked: "(deleted)" after the name

    spill = SpillRows((4, 3), np.float32, "t", beside=beside)
    spill.write(0, np.ones((4, 3), np.float32))
    assert folder_of(spill) == str(cache_dir) and not os.listdir(cache_dir)   # nothing left in the folder
    resources.use_tmp_dir(str(chosen))
    assert folder_of(SpillRows((4, 3), np.float32, "t", beside=beside)) == str(chosen)
    with pytest.raises(ValueError, match="not a writable folder"):
        resources.use_tmp_dir(str(tmp_path / "missing"))
