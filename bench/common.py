"""Shared bench helpers: the one stamped result writer and bench lock, interleaved timing, tables, test videos."""
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import resource
import subprocess
import time
from typing import Callable, Dict, Iterable, Iterator, List, Sequence, Tuple

from clipvid.atomic import atomic_path
from clipvid.jsonfile import json_text, write_json

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_VIDEOS = os.path.join(REPO, "..", "shared", "fixtures", "real_videos")
VIDEO_EXTS = (".mp4", ".avi", ".gif", ".mov", ".mkv", ".webm")


def cache_dir(*parts: str) -> str:
    """Generated bench inputs live outside the repo (never committed); $CLIPVID_BENCH_CACHE overrides."""
    root = os.environ.get("CLIPVID_BENCH_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "clipvid", "bench"))
    path = os.path.join(root, *parts)
    os.makedirs(path, exist_ok=True)
    return path


def machine() -> Dict[str, object]:
    """What the figures were measured on: CPU model, cores, GPU, memory and software."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    import torch
    from extract.ffmpeg_bin import check_ffmpeg
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem, 1), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "ffmpeg": check_ffmpeg(),
            "platform": platform.platform(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def evict_pages(path: str) -> int:
    """Drop a cache's file pages from the kernel's page cache (posix_fadvise DONTNEED, no root needed):
    `path` and every file under `path`.d. Returns how many files were evicted; the next read is cold."""
    names = [path] if os.path.isfile(path) else []
    for root, _, files in os.walk(path + ".d"):
        names += [os.path.join(root, f) for f in files]
    for name in names:
        fd = os.open(name, os.O_RDONLY)
        try:
            os.fsync(fd)          # dirty pages are not dropped: write them out first
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return len(names)


def real_videos() -> List[str]:
    folder = os.path.normpath(REAL_VIDEOS)
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(VIDEO_EXTS))


def interleaved(fns: Dict[str, Callable[[], object]], repeats: int) -> Dict[str, List[Tuple[float, float]]]:
    """(wall, CPU) seconds of each callable, run round-robin so that load spikes hit every method alike.
    CPU counts this process and its children (ffmpeg), so it is the work done, whatever else runs."""
    times: Dict[str, List[Tuple[float, float]]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            c, t = cpu_seconds(), time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t, cpu_seconds() - c))
    return times


def cpu_seconds() -> float:
    """User+system CPU of this process and its finished children."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


# The stamp every result file carries beside its module's declared RESULT_KEYS (tests/test_bench_results.py).
STAMP_FIELDS = ("commit", "machine", "load_before", "load_after", "state", "repeats", "started_at", "measured_at",
                "digest")
_LOCK: Dict[str, object] = {"file": None, "depth": 0}


def commit() -> str:
    """`git describe --always --dirty` of the code measured ("unknown" outside a git checkout); the
    result files themselves do not count as a change (a rerun rewrites them)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=60).stdout.strip()
    try:
        described = git("describe", "--always")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench/results")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (described + ("-dirty" if changed else "")) if described else "unknown"


def spread(samples: Sequence[float]) -> Dict[str, float]:
    """Median, min and max of one headline's samples (one per repeat), and how many there were."""
    vals = sorted(float(v) for v in samples)
    if not vals:
        raise ValueError("a headline needs at least one sample")
    mid = len(vals) // 2
    median = vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2
    return {"median": median, "min": vals[0], "max": vals[-1], "n": len(vals)}


def digest(data: Dict[str, object]) -> str:
    """SHA-256 of a result's figures (everything but the stamp) as the writer wrote them: an edit by hand shows."""
    body = {k: v for k, v in data.items() if k != "stamp"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@contextlib.contextmanager
def bench_lock() -> Iterator[None]:
    """One benchmark at a time on this machine: an exclusive flock of $CLIPVID_BENCH_LOCK (default
    cache_dir()/bench.lock), re-entrant within a process (`python -m bench` holds it across modules)."""
    if _LOCK["depth"] == 0:
        path = os.environ.get("CLIPVID_BENCH_LOCK") or os.path.join(cache_dir(), "bench.lock")
        f = open(path, "a")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"bench: waiting for the bench lock {path} (another benchmark is running)", flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        _LOCK["file"] = f
    _LOCK["depth"] += 1
    try:
        yield
    finally:
        _LOCK["depth"] -= 1
        if _LOCK["depth"] == 0:
            _LOCK["file"].close()     # closing the descriptor releases the flock
            _LOCK["file"] = None


class Run:
    """One benchmark run: holds the bench lock from start to write, and stamps what it writes.

    `run.headline(key, samples)` keeps a figure's spread (one sample per repeat) and returns its median;
    `run.write(data, state, repeats)` checks data's keys against the module's declared RESULT_KEYS and
    writes bench/results/<name>.json: the figures, `headlines` and `stamp` (commit, machine, load average
    before and after, warm or cold, repeats, when, digest). Nothing else writes result files."""

    def __init__(self, name: str, keys: Iterable[str]) -> None:
        self.name, self.keys, self.headlines = name, frozenset(keys), {}
        self._lock = bench_lock()
        self._lock.__enter__()
        self.load_before = _load()
        self.started_at = _now()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._lock is not None:
            self._lock.__exit__(None, None, None)
            self._lock = None

    def headline(self, key: str, samples: Sequence[float]) -> float:
        self.headlines[key] = spread(samples)
        return self.headlines[key]["median"]

    def write(self, data: Dict[str, object], state: object, repeats: int) -> str:
        extra = sorted(set(data) - self.keys - {"headlines", "stamp"})
        if extra:
            raise ValueError(f"bench.{self.name}: keys not declared in its RESULT_KEYS: {', '.join(extra)}")
        out = json.loads(json_text({**data, "headlines": dict(self.headlines)}))   # as it will read back
        out["stamp"] = {"commit": commit(), "machine": machine(), "load_before": self.load_before,
                        "load_after": _load(), "state": state, "repeats": repeats, "started_at": self.started_at,
                        "measured_at": _now(), "digest": digest(out)}
        os.makedirs(results_dir(), exist_ok=True)
        path = os.path.join(results_dir(), f"{self.name}.json")
        write_json(path, out, sort_keys=True)
        self.close()
        return path


def results_dir() -> str:
    """bench/results, or $CLIPVID_BENCH_RESULTS (the smoke tests write theirs to a temporary folder)."""
    return os.environ.get("CLIPVID_BENCH_RESULTS") or RESULTS


def check_result(doc: Dict[str, object], keys: Iterable[str], headlines: Iterable[str]) -> List[str]:
    """What is wrong with one result file against its module's declared keys and headlines (empty: nothing)."""
    problems = [f"undeclared key {k!r}" for k in sorted(set(doc) - set(keys) - {"headlines", "stamp"})]
    stamp = doc.get("stamp")
    if not isinstance(stamp, dict):
        return problems + ["no stamp"]
    problems += [f"stamp lacks {f!r}" for f in STAMP_FIELDS if f not in stamp]
    if not str(stamp.get("commit", "")).strip() or stamp.get("commit") == "unknown":
        problems.append("stamp has no commit")
    if stamp.get("digest") != digest(doc):
        problems.append("figures differ from what the bench wrote (digest)")
    for k, h in (doc.get("headlines") or {}).items():
        if k not in headlines:
            problems.append(f"undeclared headline {k!r}")
        elif not (isinstance(h, dict) and h.get("min", 1) <= h.get("median", 0) <= h.get("max", -1)):
            problems.append(f"headline {k!r} lacks median within min..max")
    return problems


def _load() -> List[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table (also valid Markdown)."""
    cells = [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def goal(value: float, limit: float, below: bool = True) -> str:
    ok = value <= limit if below else value >= limit
    return "met" if ok else "MISSED"


def make_test_video(path: str, seconds: float, size: str = "640x360", fps: int = 30, gop: int = 0,
                    src: str = "testsrc2", codec: str = "libx264", bframes: int = -1) -> str:
    """A clip from an ffmpeg test source, made once and reused; gop 0 = the encoder's default
    keyframe spacing, bframes -1 = the encoder's default (x264: 3)."""
    if os.path.exists(path):
        return path
    from extract.ffmpeg_bin import ffmpeg_exe
    args = ["-g", str(gop)] if gop else []
    args += ["-bf", str(bframes)] if bframes >= 0 else []
    # libvpx-vp9's realtime mode: a VP9 stream in seconds, not minutes (decoding cost is what we measure).
    args += ["-preset", "veryfast"] if codec == "libx264" else ["-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M"]
    with atomic_path(path, os.path.splitext(path)[1]) as tmp:   # ffmpeg picks the container by the extension
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
                        "-i", f"{src}=size={size}:rate={fps}", "-t", str(seconds), "-c:v", codec,
                        "-pix_fmt", "yuv420p", *args, tmp], check=True)
    return path


# The long clip classes of bench.decode: (file name, seconds, size, keyframe spacing, B-frames, codec).
LONG_CLASSES = {
    "long_sparse": [("x264_360p_120s_g250_bf3.mp4", 120, "640x360", 250, 3, "libx264"),
                    ("x264_360p_120s_g250_bf0.mp4", 120, "640x360", 250, 0, "libx264"),
                    ("vp9_360p_120s_g250.webm", 120, "640x360", 250, -1, "libvpx-vp9")],
    "long_dense": [("x264_720p_90s_g30_bf3.mp4", 90, "1280x720", 30, 3, "libx264"),
                   ("x264_720p_90s_g30_bf0.mp4", 90, "1280x720", 30, 0, "libx264")],
}


def long_class(name: str) -> List[str]:
    """The clips of one long class (generated once into cache_dir('long_classes'))."""
    d = cache_dir("long_classes")
    return [make_test_video(os.path.join(d, f), s, size=size, gop=g, bframes=bf, codec=codec)
            for f, s, size, g, bf, codec in LONG_CLASSES[name]]


def long_videos() -> List[str]:
    """Long clips (2-4 minutes, 360p): x264's default keyframe spacing and a 2 s one (streaming-style)."""
    d = cache_dir("long")
    specs = [("testsrc2_120s_g250.mp4", 120, 0, "testsrc2"), ("life_180s_g250.mp4", 180, 0, "life"),
             ("testsrc2_240s_g60.mp4", 240, 60, "testsrc2")]
    return [make_test_video(os.path.join(d, name), s, gop=g, src=src) for name, s, g, src in specs]


def demo_videos(count: int = 0) -> List[str]:
    """The synthetic demo set (python -m extract.synthetic), generated once."""
    d = cache_dir("demo")
    if not any(os.scandir(d)):
        subprocess.run([os.sys.executable, "-m", "extract.synthetic", d], check=True, cwd=REPO,
                       stdout=subprocess.DEVNULL)
    found = sorted(os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs if f.lower().endswith(VIDEO_EXTS))
    return found[:count] if count else found


def exit_on_help(doc: str) -> None:
    """`python -m bench.NAME --help`: print the benchmark's docstring and exit 0 instead of running it
    (several build caches of many GB, so an unknown flag must never start one)."""
    import sys
    if {"-h", "--help"} & set(sys.argv[1:]):
        name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
        print((doc or "").strip())
        print(f"\nexamples:\n  python -m bench.{name}\n  python -m bench {name}      # the same, through the runner")
        raise SystemExit(0)
