"""Sample several short videos with one ffmpeg run, so its start-up is paid once, not per video."""
import re
from typing import Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np

from extract import inproc, sampling
from extract.decode import (Sample, _source, expected_bytes, filter_text, finish, mistimed, run_ffmpeg,
                            sample_planned, scale_filters)
from extract.plan import Deadline, Plan, header_disagrees, plan_video
from extract.ffmpeg_bin import ffmpeg_exe
from extract.probe import VideoError, describe_failure, parse_inputs

# The static ffmpeg costs ~10 ms of CPU to start and set up a filter graph: as much as decoding a
# whole 4 s demo clip (bench.decode). A video joins a batch when decoding it all is cheap (at most
# this many source pixels, ~0.5 s of one core) and one pass samples it; a batch stops at
# MAX_BATCH videos (its frames are held until every member is sampled).
MAX_VIDEO_PIXELS = 4e8
MAX_BATCH_PIXELS = 1.6e9
MAX_BATCH = 8

_NAMED_PTS = re.compile(r"\[showinfo@v(\d+) @ [^\]]*\].*?pts_time:\s*(-?[0-9.]+(?:e-?\d+)?)")

Result = Union[Sample, Exception]


def batchable(p: Plan) -> bool:
    """Whether one pass over all of this video is cheap enough to share a process with others
    (videos PyAV decodes in-process, extract.inproc.eligible, start no process at all: bench.decode)."""
    pixels = p.info.duration * max(p.info.fps, 1.0) * p.info.width * p.info.height
    return p.strategy == "pass" and pixels <= MAX_VIDEO_PIXELS and not inproc.eligible(p)


def group(plans: List[Plan]) -> List[List[Plan]]:
    """Consecutive batches of at most MAX_BATCH videos and MAX_BATCH_PIXELS source pixels."""
    out: List[List[Plan]] = []
    size = 0.0
    for p in plans:
        pixels = p.info.duration * max(p.info.fps, 1.0) * p.info.width * p.info.height
        if not out or len(out[-1]) >= MAX_BATCH or size + pixels > MAX_BATCH_PIXELS:
            out.append([])
            size = 0.0
        out[-1].append(p)
        size += pixels
    return out


def batch_command(plans: List[Plan], n: int, threads: int) -> List[str]:
    """One ffmpeg command: each input selected, scaled and cropped on its own branch, then the
    branches concatenated into one stream of 224x224 G, B, R frames, input by input."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin"]
    branches = []
    for i, p in enumerate(plans):
        cmd += ["-threads", str(threads), "-i", _source(p.path)]
        select = sampling.select_expression(p.info.duration, n, p.info.fps)
        chain = [f"select='{select}'"] + [filter_text(*f) for f in scale_filters(p.geo, p.info)]
        # Every branch gets its own named showinfo: its log lines say which input a frame came from.
        branches.append(f"[{i}:v]" + ",".join(chain + ["setsar=1", f"showinfo@v{i}=checksum=0"]) + f"[s{i}]")
    joined = "".join(f"[s{i}]" for i in range(len(plans))) + f"concat=n={len(plans)}:v=1:a=0[out]"
    return cmd + ["-filter_complex_threads", "1", "-filter_complex", ";".join(branches + [joined]),
                  "-map", "[out]", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gbrp", "pipe:"]


def split_frames(stdout: memoryview, stderr: str, count: int,
                 size: int) -> Optional[List[Tuple[np.ndarray, np.ndarray]]]:
    """Per input: (frames [F, 3, S, S] G, B, R; times [F]), or None when the log and the frames disagree."""
    times: List[List[float]] = [[] for _ in range(count)]
    for idx, t in _NAMED_PTS.findall(stderr):
        if int(idx) < count:
            times[int(idx)].append(float(t))
    frame_bytes = size * size * 3
    if sum(len(t) for t in times) * frame_bytes != len(stdout):
        return None
    allf = np.frombuffer(stdout, np.uint8).reshape(-1, 3, size, size)  # [sum F, 3, S, S]
    out, start = [], 0
    for t in times:
        out.append((allf[start:start + len(t)], np.asarray(t, np.float64)))
        start += len(t)
    return out


def _decode_batch(plans: List[Plan], n: int, threads: int,
                  timeout: float) -> Iterator[Tuple[Plan, Optional[Tuple[np.ndarray, np.ndarray]]]]:
    """(plan, (frames, times)) for each video of one shared ffmpeg run; None where the video must be
    decoded on its own (the run failed or timed out; ffmpeg read its header otherwise than we did;
    its frames stop early or run past the header's end)."""
    size = plans[0].geo.size
    try:
        out = run_ffmpeg(batch_command(plans, n, threads), timeout, plans[0].path,
                         sum(expected_bytes(p.info, n, size) for p in plans))
        err = out.stderr.decode("utf-8", "replace")
        parts = split_frames(out.stdout, err, len(plans), size) if out.returncode == 0 else None
        theirs = parse_inputs(err)
    except VideoError:          # out of time: each video gets its own limit next
        parts, theirs = None, {}
    for k, p in enumerate(plans):
        part = parts[k] if parts is not None else None   # None: one input spoilt the run
        if part is not None and (mistimed(part[1], p.info, n) or header_disagrees(p, theirs.get(k))):
            part = None
        yield p, part


def iter_samples(paths: Iterable[str], n: int, threads: int = 1,
                 timeout: float = 300.0, prep=None) -> Iterator[Tuple[int, Result]]:
    """(index, Sample or the VideoError that stopped it) for every path, as each is ready.

    Short one-pass videos share ffmpeg runs; the rest, and any a shared run cannot serve, run alone
    exactly as extract.decode.sample_video runs them. Samples are made one at a time (memory).
    Whatever goes wrong with one video (any exception) is that video's VideoError alone."""
    plans: List[Tuple[int, Plan]] = []
    for i, path in enumerate(paths):
        try:
            plans.append((i, plan_video(path, n, Deadline(timeout), prep=prep)))
        except Exception as exc:
            yield i, describe_failure(exc)
    index = {id(p): i for i, p in plans}
    shared = [p for _, p in plans if batchable(p)]
    solo = len(shared) < 2          # one short video gains nothing from a shared run
    alone = [p for _, p in plans if solo or not batchable(p)]
    for batch in [] if solo else group(shared):
        try:
            served = list(_decode_batch(batch, n, threads, timeout))
        except Exception:           # whatever spoilt the shared run: each member is sampled alone
            served = [(p, None) for p in batch]
        for p, part in served:
            if part is None:
                alone.append(p)
                continue
            try:
                yield index[id(p)], finish(part[0], part[1], p.info, n, p.strategy)
            except Exception as exc:
                yield index[id(p)], describe_failure(exc)
    for p in alone:
        try:
            yield index[id(p)], sample_planned(p, n, threads, Deadline(timeout))
        except Exception as exc:
            yield index[id(p)], describe_failure(exc)


def sample_videos(paths: List[str], n: int, threads: int = 1, timeout: float = 300.0) -> List[Result]:
    """Every path's Sample, or the exception that stopped it, in the order of `paths`."""
    out: List[Optional[Result]] = [None] * len(paths)
    for i, r in iter_samples(paths, n, threads, timeout):
        out[i] = r
    return out  # type: ignore[return-value]
