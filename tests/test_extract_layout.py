"""extract's default worker layout: every core decodes on a GPU machine (bench.gpu measured why)."""
import os

import pytest

from extract import layout, pipeline


@pytest.mark.parametrize("cores,gpus,gib,expected", [
    (16, 1, 140, (16, 1)),    # one single-task worker per core: PyAV holds the GIL while it decodes
    (64, 1, 80, (16, 1)),     # at most 16 CLIP copies per GPU; the other cores are libavcodec's threads
    (64, 2, 80, (32, 1)),
    (32, 1, 16, (5, 1)),      # a 16 GiB card holds 5 workers of 3 GiB
    (32, 2, 8, (4, 1)),       # the smallest card decides: 2 per 8 GiB GPU
    (16, 1, 2, (1, 1)),       # a tiny card still gets its one worker
    (2, 1, 80, (2, 1)),
    (1, 2, 80, (2, 1)),       # never fewer workers than GPUs
])
def test_gpu_layout_puts_every_core_to_decoding(monkeypatch, cores, gpus, gib, expected):
    monkeypatch.setattr(layout, "cpu_count", lambda: cores)
    monkeypatch.setattr(layout, "cuda_count", lambda: gpus)
    monkeypatch.setattr(layout, "gpu_memory_gib", lambda used: [gib] * len(used))
    workers, threads = layout.default_layout("auto", None, None)
    assert (workers, threads) == expected
    assert workers * threads * pipeline.codec_threads(cores, workers, threads) >= cores - workers   # every core busy


def test_layout_keeps_what_the_user_asked(monkeypatch):
    monkeypatch.setattr(layout, "cpu_count", lambda: 16)
    monkeypatch.setattr(layout, "cuda_count", lambda: 1)
    monkeypatch.setattr(layout, "gpu_memory_gib", lambda used: [80.0] * len(used))
    assert layout.default_layout("cuda", 3, None) == (3, 1)
    assert layout.default_layout("cuda", None, 4) == (16, 4)
    assert layout.default_layout("cpu", None, None) == (8, 1)     # --device cpu: one worker per core, up to 8


def test_layout_sizes_gpu_workers_from_the_free_memory_of_the_gpus_it_uses(monkeypatch):
    """On a shared server other jobs hold part of each card: workers fit in what is free, and
    --device cuda:N sizes for that GPU alone."""
    monkeypatch.setattr(layout, "cpu_count", lambda: 32)
    monkeypatch.setattr(layout, "cuda_count", lambda: 2)
    free = {0: 70.0, 1: 7.0}
    asked = []
    monkeypatch.setattr(layout, "gpu_memory_gib", lambda used: asked.append(list(used)) or [free[i] for i in used])
    assert layout.default_layout("cuda:0", None, None) == (16, 1)
    assert layout.default_layout("cuda:1", None, None) == (2, 1)     # 7 GiB free holds 2 workers of 3 GiB
    assert layout.default_layout("cuda", None, None) == (4, 1)       # the fuller card decides for both
    assert asked == [[0], [1], [0, 1]]



def test_local_workers_are_numbered_so_they_spread_evenly_over_gpus():
    from extract import worker_tasks
    client, cluster = pipeline.make_client(pipeline.Options(workers=2, threads_per_worker=1, device="cpu"))
    try:
        indices = sorted(client.submit(worker_tasks._worker_index, workers=[addr], pure=False).result()
                         for addr in client.scheduler_info()["workers"])
    finally:
        client.close()
        cluster.close()
    assert indices == [0, 1]
    assert worker_tasks._worker_index() == os.getpid()      # outside a worker: the process id


def test_our_own_cluster_runs_quiet_housekeeping():
    """Dask's workers sample their stacks every 10 ms for a dashboard nobody reads here, and every
    process wakes every 20 ms to check its event loop, each time taking the GIL from decoding; the
    user's own Dask settings in this process stay as they were."""
    import dask
    before = {k: dask.config.get(k) for k in pipeline.QUIET_DASK}
    client, cluster = pipeline.make_client(pipeline.Options(workers=2, threads_per_worker=1, device="cpu"))
    try:
        profiling = client.run(lambda dask_worker: "profile" in dask_worker.periodic_callbacks)
        settings = client.run(lambda: {k: dask.config.get(k) for k in pipeline.QUIET_DASK})
    finally:
        client.close()
        cluster.close()
    assert len(profiling) == 2 and not any(profiling.values())
    assert all(got == pipeline.QUIET_DASK for got in settings.values())
    assert {k: dask.config.get(k) for k in pipeline.QUIET_DASK} == before
    assert before["distributed.admin.tick.interval"] != pipeline.QUIET_DASK["distributed.admin.tick.interval"]
