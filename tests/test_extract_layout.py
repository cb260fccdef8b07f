"""extract's default worker layout: every core decodes on a GPU machine (bench.gpu measured why)."""
import os

import pytest

from extract import layout, pipeline


@pytest.mark.parametrize("cores,gpus,gib,expected", [
    (16, 1, 140, (8, 2)),     # the layout bench.gpu found fastest on an H200 with 16 cores
    (64, 1, 80, (8, 8)),      # at most 8 CLIP copies per GPU; the cores still all decode
    (64, 2, 80, (16, 4)),
    (32, 1, 16, (5, 6)),      # a 16 GiB card holds 5 workers of 3 GiB
    (32, 2, 8, (4, 8)),       # the smallest card decides: 2 per 8 GiB GPU
    (16, 1, 2, (1, 16)),      # a tiny card still gets its one worker
    (2, 1, 80, (1, 2)),
    (1, 2, 80, (2, 2)),       # never fewer workers than GPUs
])
def test_gpu_layout_puts_every_core_to_decoding(monkeypatch, cores, gpus, gib, expected):
    monkeypatch.setattr(layout, "cpu_count", lambda: cores)
    monkeypatch.setattr(layout, "cuda_count", lambda: gpus)
    monkeypatch.setattr(layout, "gpu_memory_gib", lambda used: [gib] * len(used))
    workers, threads = layout.default_layout("auto", None, None)
    assert (workers, threads) == expected
    assert workers * threads >= min(cores, 2 * workers)


def test_layout_keeps_what_the_user_asked(monkeypatch):
    monkeypatch.setattr(layout, "cpu_count", lambda: 16)
    monkeypatch.setattr(layout, "cuda_count", lambda: 1)
    monkeypatch.setattr(layout, "gpu_memory_gib", lambda used: [80.0] * len(used))
    assert layout.default_layout("cuda", 3, None) == (3, 5)
    assert layout.default_layout("cuda", None, 4) == (8, 4)
    assert layout.default_layout("cpu", None, None) == (8, 1)     # --device cpu: one worker per core, up to 8


def test_layout_sizes_gpu_workers_from_the_free_memory_of_the_gpus_it_uses(monkeypatch):
    """On a shared server other jobs hold part of each card: workers fit in what is free, and
    --device cuda:N sizes for that GPU alone."""
    monkeypatch.setattr(layout, "cpu_count", lambda: 32)
    monkeypatch.setattr(layout, "cuda_count", lambda: 2)
    free = {0: 70.0, 1: 7.0}
    asked = []
    monkeypatch.setattr(layout, "gpu_memory_gib", lambda used: asked.append(list(used)) or [free[i] for i in used])
    assert layout.default_layout("cuda:0", None, None) == (8, 4)
    assert layout.default_layout("cuda:1", None, None) == (2, 16)    # 7 GiB free holds 2 workers of 3 GiB
    assert layout.default_layout("cuda", None, None) == (4, 8)       # the fuller card decides for both
    assert asked == [[0], [1], [0, 1]]



def _decoder_in_workers(threads: int):
    from extract import worker_tasks
    client, cluster = pipeline.make_client(pipeline.Options(workers=1, threads_per_worker=threads, device="cpu"))
    try:
        return client.submit(worker_tasks.choose_decoder, pure=False).result()
    finally:
        client.close()
        cluster.close()


def test_a_real_cluster_decodes_in_process_only_with_one_task_per_worker(monkeypatch):
    """PyAV holds the GIL: a worker's task threads share it, ffmpeg processes do not (bench.gpu)."""
    from extract import inproc
    monkeypatch.delenv("CLIPVID_INPROC", raising=False)
    if not inproc.available():
        pytest.fail("PyAV is a runtime dependency (requirements.txt) and must import here")
    assert _decoder_in_workers(1) is True
    assert _decoder_in_workers(2) is False
    monkeypatch.setenv("CLIPVID_INPROC", "1")          # the user's own choice wins (the workers inherit it)
    assert _decoder_in_workers(2) is True


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
