"""A decode given one thread runs on one thread: the colour conversion and resize too (workers
share the cores, and libavfilter would otherwise start one thread per core in every worker)."""
import os
import threading

import pytest

from extract.decode import sample_video
from extract.geometry import CLIP, Geometry

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through /proc")


def _most_threads_while(fn) -> int:
    """The most OS threads this process had while `fn` ran (sampled every millisecond)."""
    most, done = [0], threading.Event()

    def watch() -> None:
        while not done.wait(0.001):
            most[0] = max(most[0], len(os.listdir("/proc/self/task")))
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        fn()
    finally:
        done.set()
        watcher.join()
    return most[0]


def test_one_thread_decodes_and_converts(real_videos):
    big = max(real_videos, key=os.path.getsize)
    squash = Geometry(64, "squash")
    before = len(os.listdir("/proc/self/task")) + 1      # and the watcher
    most = _most_threads_while(lambda: sample_video(big, 100, threads=1, geometries=(CLIP, squash)))
    assert most == before, f"{os.path.basename(big)}: {most - before} more thread(s) than the decode's one"
