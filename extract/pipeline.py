"""Run an extraction: skip what is cached, fan videos out to Dask, stream results to the writer."""
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from clipvid.progress import progress
from cache.reader import read_settings
from cache.schema import make_settings, settings_mismatch
from cache.layout import journal_file
from cache.writer import CacheWriter
from clipvid.errors import CacheError
from clipvid.resources import cpu_count
from extract import identity, worker_tasks
from extract.layout import default_layout
from extract.backbones import preprocess_of
from extract.weights import file_hash, resolve_weights
from extract.prompts import TEMPLATES
from extract.sources import Source
from extract.targets import Target

# Version 2: PyAV decodes every file it can read, the frame nearest each target is picked exactly
# (version 1 made two FFmpeg builds agree on the command line's select rule), flips in the display
# matrix are applied; the command line samples what PyAV cannot read (/videos/decoder says which).
SAMPLER = {"times": "centre of N equal slices of the video stream's duration",
           "pick": "nearest decoded frame (ties: the earlier)", "decoder": "PyAV, else the ffmpeg command line",
           "orientation": "the display matrix as ffmpeg applies it (rotations and flips)",
           "resize": "short side 224, bicubic (swscale; area when shrinking 2x or more)", "crop": "centre 224x224",
           "version": 2}


WARM_TIMEOUT = 120.0   # seconds to wait for every worker to load the model before the first video


@dataclass(kw_only=True)
class Options:
    clip_model: str = "ViT-B/32"
    frames: int = 100
    workers: Optional[int] = None
    threads_per_worker: Optional[int] = None
    scheduler: Optional[str] = None
    device: str = "auto"
    batch_size: int = 100
    video_timeout: float = 300.0
    retry_failed: bool = False
    progress: bool = True
    torch_threads: Optional[int] = None   # per worker; None: the host's cores / its workers
    replace_changed: bool = False   # re-extract cached ids whose file content changed (else refuse)
    allow_new_root: bool = False    # add videos of another source folder to this cache (else refuse)


@dataclass
class Summary:
    cached: int = 0
    skipped: int = 0
    replaced: int = 0           # cached videos re-extracted because their file changed
    failed: Dict[str, str] = field(default_factory=dict)      # this run's new failures
    deferred: Dict[str, str] = field(default_factory=dict)    # left out for lack of GPU memory, not failed
    still_failed: Dict[str, str] = field(default_factory=dict)  # earlier failures not retried
    seconds: float = 0.0
    work_seconds: float = 0.0   # first video sent to last result: start-up and model loading excluded
    strategies: Dict[str, int] = field(default_factory=dict)


# Housekeeping that our own cluster's processes need not do so often: each wake-up takes the GIL
# from the thread that decodes (bench.pipeline). The workers sample their stacks every 10 ms for the
# dashboard's profile, every process's event loop checks itself every 20 ms, and a system monitor
# samples CPU and memory every 0.5 s for plots nobody opens here. A scheduler the user started
# keeps its own settings.
QUIET_DASK = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s",
              "distributed.admin.system-monitor.interval": "5s"}


def make_client(opts: Options):
    """A Dask client: an existing scheduler (TLS with the Dask config's security settings, e.g. a
    --scheduler tls://... with DASK_DISTRIBUTED__COMM__TLS__* files), or a LocalCluster of worker
    processes that speak TLS with credentials made for this run alone: on a shared machine any other
    user could otherwise connect to 127.0.0.1 and run code in our workers, as us."""
    import dask
    from dask.distributed import Client, LocalCluster
    from distributed.security import Security
    if opts.scheduler:
        client = Client(opts.scheduler, timeout="30s")
        client.wait_for_workers(1, timeout=60)
        return client, None
    workers, threads = default_layout(opts.device, opts.workers, opts.threads_per_worker)
    # Ctrl-C reaches every process of the terminal's group: the workers would each print a
    # KeyboardInterrupt traceback. They start with SIGINT ignored and are stopped by
    # cluster.close(); this process alone handles the interrupt, once the start is over.
    _workers_ignore_sigint()
    with _sigint_deferred() as interrupted:
        try:
            # The scheduler always serves HTTP; a free local port, not 8787, so two runs never warn.
            with dask.config.set(QUIET_DASK):
                cluster = LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                                       dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
                                       memory_limit=0, protocol="tls://", security=Security.temporary())
        except Exception:
            # A Ctrl-C can reach a worker in the instant between its fork and its wrapper's trap,
            # which fails the start: that is the interrupt, not an error.
            if interrupted:
                raise KeyboardInterrupt from None
            raise
    if interrupted:
        cluster.close()
        raise KeyboardInterrupt
    return Client(cluster, security=cluster.security), cluster


def _workers_ignore_sigint() -> None:
    """Start every later worker process (restarts too) through worker_python.sh, which ignores SIGINT
    before it execs this interpreter: a signal ignored at exec stays ignored, and neither Python nor
    asyncio then installs a KeyboardInterrupt handler. A handler of ours would not survive the exec."""
    import multiprocessing.spawn
    wrapper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker_python.sh")
    if os.access(wrapper, os.X_OK) and os.path.exists("/bin/sh"):
        os.environ["CLIPVID_WORKER_PYTHON"] = sys.executable
        multiprocessing.spawn.set_executable(wrapper)


@contextlib.contextmanager
def _sigint_deferred():
    """While the cluster starts a Ctrl-C is only noted, so it is never left half-started; the caller
    raises it once the start is over. Yields a list that is non-empty when a Ctrl-C came."""
    noted: list = []
    if threading.current_thread() is not threading.main_thread():
        yield noted
        return
    previous = signal.signal(signal.SIGINT, lambda *_: noted.append(True))
    try:
        yield noted
    finally:
        signal.signal(signal.SIGINT, previous)


def weights_settings(opts: Options, source_root: str, dim: int = 0, out: str = "") -> dict:
    """The settings a run into the cache `out` writes: the backbone's, N, the sampler, and the prompt
    templates of `out` when it exists (a cache's classes are all embedded alike), else today's."""
    path, is_random = resolve_weights(opts.clip_model)
    templates = read_settings(out).get("prompt_templates") if out and os.path.exists(out) else None
    return make_settings(opts.clip_model, file_hash(path), is_random, dim, opts.frames, SAMPLER,
                         json.loads(templates) if templates else TEMPLATES, source_root,
                         preprocess_of(opts.clip_model).settings())


def sampler_version(settings: dict) -> int:
    """The `version` of a cache's `sampler` setting (1 for caches older than the key)."""
    import json
    try:
        return int(json.loads(settings.get("sampler") or "{}").get("version", 1))
    except (ValueError, TypeError, AttributeError):
        return 1


def precheck(out: str, settings: dict, allow_new_root: bool = False) -> None:
    """Refuse an existing cache made with other settings, or from another folder, before any cluster starts."""
    if os.path.exists(out):
        old = read_settings(out)
        why = settings_mismatch(old, dict(settings, dim=old.get("dim")))
        if why and sampler_version(old) != SAMPLER["version"]:
            raise CacheError(out, f"refusing to append: {why}; its frames were chosen by sampler version "
                                  f"{sampler_version(old)}, this run's sampler is version {SAMPLER['version']}; "
                                  f"extract into a new --out cache (or re-extract these videos into one)")
        if why:
            raise CacheError(out, f"refusing to append: {why}; use another --out file")
        identity.check_root(out, old.get("source_root"), settings["source_root"], allow_new_root)


def run(source: Source, out: str, opts: Options, log=print) -> Summary:
    """Extract every video of `source` into the cache `out`; returns counts and failures."""
    return run_many(source, {opts.clip_model: out}, opts, log)[opts.clip_model]


def run_many(source: Source, outs: Dict[str, str], opts: Options, log=print) -> Dict[str, Summary]:
    """Extract every video of `source` into one cache per backbone ({spec: cache file}), each video
    decoded once for all of them; returns each cache's counts and failures."""
    root = os.path.abspath(source.root)   # absolute: thumbnails work from anywhere
    targets = []
    for spec, out in outs.items():
        settings = weights_settings(dataclasses.replace(opts, clip_model=spec), root, out=out)
        precheck(out, settings, opts.allow_new_root)
        targets.append(Target(spec, out, settings, Summary()))
    start = time.time()
    quick = {t.spec: _already_done(source, t.out, opts) for t in targets}
    if all(q is not None for q in quick.values()):  # nothing to embed and no new class: no cluster to start
        for t in targets:
            # A new root must be recorded; a journal left by a killed run (killed after its last commit)
            # is replayed and removed by a writer, so the cache folder ends tidy either way.
            if opts.allow_new_root or os.path.exists(journal_file(t.out)):
                CacheWriter(t.out, dict(t.settings, dim=read_settings(t.out)["dim"])).close()
            quick[t.spec].seconds = time.time() - start
        return quick
    client, cluster = make_client(opts)
    try:
        _run(client, source, targets, opts, start, log)
        return {t.spec: t.summary for t in targets}
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _quiet_dask() -> None:
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


def _hush(client) -> None:
    """After Ctrl-C our own local cluster stops mid-task: what Dask logs about that (lost heartbeats,
    cancelled tasks, closed comms) is noise, here and in the workers. A shared cluster is left alone."""
    _quiet_dask()
    try:
        client.run(_quiet_dask)
    except Exception:   # a worker already gone has nothing left to say
        pass


# Small files share a task: per-task Dask overhead was a large part of the time of a 4 s clip
# (bench.pipeline). Bigger files go alone.
SMALL_FILE = 16 << 20   # bytes
MAX_CHUNK = 8


def codec_threads(cores: int, workers_per_host: int, tasks_per_worker: int) -> int:
    """libavcodec threads per decode: the host's cores shared by every task that may run at once."""
    return max(1, cores // max(1, workers_per_host * tasks_per_worker))


def chunk_items(items: list, workers: int) -> List[list]:
    """Consecutive groups of small files; every other file is a group of its own. A group takes
    1/(4 x workers) of the files still to place (at most MAX_CHUNK), so groups shrink towards the
    end and no worker is left with a long last group while the others idle."""
    chunks: List[list] = []
    open_chunk: list = []
    for placed, item in enumerate(items):
        try:
            small = os.path.getsize(item.path) <= SMALL_FILE
        except OSError:
            small = False          # the worker reports why it cannot be read
        if not small:
            chunks.append([item])
            continue
        open_chunk.append(item)
        left = len(items) - placed + len(open_chunk) - 1      # this group's files and those after it
        if len(open_chunk) >= max(1, min(MAX_CHUNK, -(-left // (4 * max(1, workers))))):
            chunks.append(open_chunk)
            open_chunk = []
    if open_chunk:
        chunks.append(open_chunk)
    return chunks


def plan(source: Source, done, failed: Dict[str, str], retry: bool, summary: Summary,
         stored=lambda vid: "", out: str = "", replace: bool = False) -> list:
    """The items still to extract (cached ones whose file changed included, when `replace`);
    counts the skipped ones into `summary`. `stored(id)` is the cached content fingerprint."""
    todo, cached = [], []
    for item in source.items:
        if item.id in done:
            cached.append(item)
        elif item.id in failed and not retry:
            summary.still_failed[item.id] = failed[item.id]
        else:
            todo.append(item)
    changed = identity.changed_items(cached, stored, out, replace)
    summary.skipped += len(cached) - len(changed)
    summary.replaced += len(changed)
    return todo + changed


def _already_done(source: Source, out: str, opts: Options) -> Optional[Summary]:
    """A summary when the cache already holds every video and class of `source`, else None."""
    if not os.path.exists(out):
        return None
    from cache.reader import open_cache
    with open_cache(out, columns=("content",)) as r:   # ids and fingerprints are all it needs
        summary = Summary()
        stored = dict(zip(r.ids, r.content))
        todo = plan(source, stored, dict(r.failures), opts.retry_failed, summary, stored.get, out,
                    opts.replace_changed)
        if todo or not set(source.classes) <= set(r.class_names):
            return None
    return summary


def _per_host(client) -> int:
    hosts: Dict[str, int] = {}
    for addr in client.scheduler_info()["workers"]:
        host = addr.split("://")[-1].rsplit(":", 1)[0]
        hosts[host] = hosts.get(host, 0) + 1
    return max(hosts.values()) if hosts else 1


def _run(client, source: Source, targets: List[Target], opts: Options, start: float, log) -> None:
    from dask.distributed import as_completed
    per_host = _per_host(client)
    common = (opts.device, per_host, opts.torch_threads)
    try:
        for t in targets:
            t.open(client, source, common)
            t.todo = {it.id for it in plan(source, t.writer.done_ids, t.writer.failed, opts.retry_failed, t.summary,
                                           t.writer.content_of, t.out, opts.replace_changed)}
        wanted = set().union(*(t.todo for t in targets))
        todo = [item for item in source.items if item.id in wanted]
        # where each worker embeds, and in what precision
        for line in _warm_all(client, ([t.spec for t in targets], *common)):
            if opts.progress or "not on the GPU" in line:
                print(line, file=sys.stderr, flush=True)
        work_start = time.time()
        threads = sum(client.nthreads().values()) or 1
        ffmpeg_threads = codec_threads(cpu_count(), per_host, max(client.nthreads().values() or [1]))
        window = 2 * threads + 2   # tasks in flight, bounded: memory does not grow with the collection
        pending = iter(chunk_items(todo, threads))
        by_key = {}
        contents: Dict[str, str] = {}   # fingerprints taken before decoding: a later change is seen next run

        def submit_next(ac, chunk=None) -> None:
            chunk = chunk or next(pending, None)
            if chunk is None:
                return
            specs = [t.spec for t in targets if any(it.id in t.todo for it in chunk)]   # one decode for these
            fut = client.submit(worker_tasks.videos_task, specs, *common, [(it.id, it.path) for it in chunk],
                                opts.frames, opts.batch_size, ffmpeg_threads, opts.video_timeout, pure=False)
            by_key[fut.key] = chunk
            contents.update(zip((it.id for it in chunk), identity.fingerprints([it.path for it in chunk])))
            ac.add(fut)

        ac = as_completed()
        for _ in range(window):
            submit_next(ac)
        bar = progress(total=len(todo), unit="video", quiet=not opts.progress, desc="extract")
        for fut in ac:
            chunk = by_key.pop(fut.key)
            try:
                results = fut.result()
            except Exception as exc:  # a worker died repeatedly, or a bug: record it, keep going
                if len(chunk) > 1:    # one video may have taken its batch-mates down: each again, alone
                    fut.release()
                    for it in chunk:
                        submit_next(ac, [it])
                    continue
                results = [{t.spec: {"id": it.id, "error": worker_tasks.task_failure(exc)} for t in targets}
                           for it in chunk]
            fut.release()
            for item, res in zip(chunk, results):
                content = contents.pop(item.id, "")
                for t in targets:
                    if item.id in t.todo:
                        t.record(item, res[t.spec], content)
            bar.update(len(chunk))
            bar.set_postfix(failed=max(len(t.summary.failed) for t in targets))
            submit_next(ac)
        bar.close()
        for t in targets:
            t.summary.work_seconds = time.time() - work_start
            t.writer.close()
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt) and not opts.scheduler:
            _hush(client)   # first: committing below may take a while, and workers then log lost heartbeats
        for t in targets:   # interrupted: keep every finished video of every cache (commit), then re-raise
            t.close_interrupted()
        raise
    for t in targets:
        t.summary.seconds = time.time() - start


def _warm_all(client, common: tuple) -> List[str]:
    """Load the model on every worker at once, before the first video: otherwise each loads it
    when its first video arrives (seconds for ViT-B/32) while the others already work. Returns the
    distinct device lines of the workers that answered."""
    from dask.distributed import wait
    workers = list(client.scheduler_info()["workers"])
    futs = [client.submit(worker_tasks.warm, *common, workers=[w], allow_other_workers=False, pure=False)
            for w in workers]
    try:
        wait(futs, timeout=WARM_TIMEOUT)
    except Exception:  # a slow or lost worker: it loads the model with its first video instead
        pass
    lines = sorted({f.result() for f in futs if f.status == "finished"})
    client.cancel(futs)
    return lines
