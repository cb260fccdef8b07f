"""Shared bench helpers: machine description, interleaved timing, result JSON, tables, test videos."""
import os
import platform
import resource
import subprocess
import time
from typing import Callable, Dict, List, Sequence, Tuple

from clipvid.atomic import atomic_path
from clipvid.jsonfile import write_json

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
    """What the figures were measured on."""
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
            "platform": platform.platform(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


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


def write_result(name: str, data: Dict[str, object]) -> str:
    """bench/results/<name>.json with the figures, the machine and when."""
    os.makedirs(RESULTS, exist_ok=True)
    out = dict(data)
    out.setdefault("machine", machine())
    out["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    path = os.path.join(RESULTS, f"{name}.json")
    write_json(path, out, sort_keys=True)
    return path


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
