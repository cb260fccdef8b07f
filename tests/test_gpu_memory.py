"""A GPU that runs out of memory: smaller batches, then the video is left for the next run, never failed."""
import numpy as np
import pytest
import torch

from extract import pipeline, worker_tasks
from extract.targets import Target


class Sample:
    """What extract.decode yields for one video: distinct frames and which of them each row shows."""
    def __init__(self, n: int = 10):
        self.distinct = np.zeros((n, 4, 4, 3), np.uint8)
        self.rows = np.arange(n)


def _gpu_with_room_for(monkeypatch, frames: int, calls: list):
    """encode_frames as on a GPU that holds `frames` frames per forward pass at most (torch's own error)."""
    import extract.clip_model as cm

    def encode(model, frames_, batch_size=100):
        calls.append(batch_size)
        if batch_size > frames:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return np.ones((len(frames_), 8), np.float16)
    monkeypatch.setattr(cm, "encode_frames", encode)


def test_out_of_memory_halves_the_batch_until_it_fits(monkeypatch):
    calls = []
    _gpu_with_room_for(monkeypatch, 30, calls)
    emb = worker_tasks.embed_sample(None, Sample(10), 100)
    assert emb.shape == (10, 8) and calls == [100, 50, 25]


def test_a_video_that_never_fits_is_deferred_not_failed(monkeypatch):
    calls = []
    _gpu_with_room_for(monkeypatch, 0, calls)
    res = worker_tasks._embedded("v.mp4", Sample(10), None, 8)
    assert calls == [8, 4, 2, 1] and "error" not in res and "out of memory" in res["resource"]

    class Writer:   # what recording may call on the cache writer: nothing, for a deferred video
        def __getattr__(self, name):
            raise AssertionError(f"a deferred video reached the cache writer ({name})")
    summary = pipeline.Summary()
    Target("random:tiny", "c.h5", {}, summary, Writer()).record(type("Item", (), {"id": "v.mp4"})(), res)
    assert summary.deferred == {"v.mp4": res["resource"]} and not summary.failed and summary.cached == 0


def test_other_errors_are_still_the_videos(monkeypatch):
    import extract.clip_model as cm

    def broken(model, frames_, batch_size=100):
        raise RuntimeError("Expected 3 channels, got 4")
    monkeypatch.setattr(cm, "encode_frames", broken)
    res = worker_tasks._embedded("v.mp4", Sample(3), None, 8)
    assert res["error"].startswith("embedding failed") and "resource" not in res
    assert worker_tasks.is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert not worker_tasks.is_out_of_memory(ValueError("bad frame"))
