"""A decode given one thread runs on one thread: the colour conversion and resize too (workers
share the cores, and libavfilter would otherwise start one thread per core in every worker)."""
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through /proc")

# Run in a fresh process: threads other tests leave behind in this one would blur the count.
_COUNT = """
import os, sys, threading
from extract.decode import sample_video
from extract.geometry import CLIP, Geometry
most, done = [0], threading.Event()
def watch():
    while not done.wait(0.001):
        most[0] = max(most[0], len(os.listdir("/proc/self/task")))
watcher = threading.Thread(target=watch)
watcher.start()
before = len(os.listdir("/proc/self/task"))
sample_video(sys.argv[1], 100, threads=1, geometries=(CLIP, Geometry(64, "squash")))
done.set()
watcher.join()
print(before, most[0])
"""


def test_one_thread_decodes_and_converts(real_videos):
    big = max(real_videos, key=os.path.getsize)
    out = subprocess.run([sys.executable, "-c", _COUNT, big], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr
    before, most = map(int, out.stdout.split())
    assert most == before, f"{os.path.basename(big)}: {most - before} more thread(s) than the decode's one"
