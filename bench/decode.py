"""bench.decode: our N=100 sampler against bare decode, naive readers and the OpenCV peer."""
import os
import sys
from typing import Dict, List

from bench import common, peers
from extract import decode as ours_mod
from extract.aviheader import read_avi_info
from extract.mp4header import read_keyframes, read_mp4_info
from extract.probe import probe


def _measure(files: List[str], methods: Dict[str, object], repeats: int) -> Dict[str, Dict[str, float]]:
    """Per file, the best-of-`repeats` wall seconds of each method (run interleaved)."""
    out = {}
    for f in files:
        fns = {name: (lambda fn=fn: fn(f)) for name, fn in methods.items()}
        times = common.interleaved(fns, repeats)
        out[f] = {**{name: min(w for w, _ in ts) for name, ts in times.items()},
                  **{name + "_cpu": min(c for _, c in ts) for name, ts in times.items()}}
        print(f"  {os.path.basename(f)[:36]:36s} " + " ".join(f"{k} {out[f][k + '_cpu'] * 1000:6.0f}/{out[f][k] * 1000:6.0f}"
                                                             for k in methods), flush=True)
    return out


def _measure_set(files: List[str], methods: Dict[str, object], repeats: int) -> Dict[str, float]:
    """Best-of-`repeats` (wall, CPU) seconds of each method over the whole set of files (interleaved)."""
    times = common.interleaved(methods, repeats)
    return {**{k: min(w for w, _ in v) for k, v in times.items()}, **{k + "_cpu": min(c for _, c in v) for k, v in times.items()}}


def _sum(per_file: Dict[str, Dict[str, float]], key: str) -> float:
    return sum(v[key] for v in per_file.values())


def _strategy_table(files: List[str], repeats: int) -> Dict[str, Dict[str, float]]:
    """One pass against one seek per sample on the long clips: the data behind choose_strategy."""
    rows = {}
    for f in files:
        info = read_mp4_info(f) or probe(f)
        fns = {s: (lambda s=s: ours_mod.sample_video(f, peers.N, threads=1, strategy=s)) for s in ("pass", "seek")}
        t = {k: min(c for _, c in v) for k, v in common.interleaved(fns, repeats).items()}
        rows[os.path.basename(f)] = {"duration": info.duration, "fps": info.fps,
                                     "frames_per_sample": info.duration * info.fps / peers.N,
                                     "pass_s": t["pass"], "seek_s": t["seek"]}
        print(f"  {os.path.basename(f)}: CPU pass {t['pass']:.2f}s seek {t['seek']:.2f}s "
              f"(chosen: {ours_mod.sampling.choose_strategy(info.duration, info.fps, peers.N, read_keyframes(f))})", flush=True)
    return rows


def fallbacks(files: List[str]) -> Dict[str, object]:
    """How often the in-process header readers had to give way on ordinary files: the header was
    read in-process but ffmpeg's reading in the decode run, or the decoded frames, said otherwise
    (a second decode). Each file sampled as the workers sample it (extract.batch)."""
    from extract.batch import iter_samples
    read = sum((read_mp4_info(f) or read_avi_info(f)) is not None for f in files)
    fell, failed = [], []
    for i, sample in iter_samples(files, peers.N, threads=1):
        if isinstance(sample, Exception):
            failed.append(f"{os.path.basename(files[i])}: {sample}")
        elif sample.fallback:
            fell.append(f"{os.path.basename(files[i])}: {sample.fallback}")
    print(f"  fallbacks: {len(fell)} of {len(files)} files ({read} read in-process), {len(failed)} failed", flush=True)
    return {"files": len(files), "read_in_process": read, "fallbacks": len(fell),
            "fallback_rate": len(fell) / max(len(files), 1), "fallback_files": fell, "failed": failed,
            "method": "the 8 real fixtures, every demo clip and the long clips, N=%d, sampled by "
                      "extract.batch.iter_samples; a fallback = the header reading replaced by ffmpeg's or "
                      "the frames' (Sample.fallback)" % peers.N}


def fallback_only() -> dict:
    """`python -m bench.decode fallback`: measure only the fallback rate; merge it into decode.json."""
    import json
    import time
    res = fallbacks(common.real_videos() + common.demo_videos() + common.long_videos())
    res.update(machine=common.machine(), measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    path = os.path.join(common.RESULTS, "decode.json")
    with open(path) as f:
        whole = json.load(f)          # the ratios keep their own date; this key carries its own
    whole["header_fallbacks"] = res
    with open(path, "w") as f:
        json.dump(whole, f, indent=2, sort_keys=True)
        f.write("\n")
    return res


def main(repeats_short: int = 3, repeats_long: int = 2) -> dict:
    # Measured as a pipeline worker runs: one thread, and glibc keeping freed buffers for reuse.
    from extract.worker_tasks import keep_freed_memory
    keep_freed_memory()
    short = common.real_videos() + common.demo_videos()[::24]      # 8 real + 12 demo (one per class)
    long_ = common.long_videos()
    print(f"decode: {len(short)} short clips, {len(long_)} long clips, N={peers.N}", flush=True)
    # Per file (diagnostics, and the naive and peer sums): each clip sampled alone.
    s = _measure(short, {"alone": peers.ours, "bare": peers.bare_decode, "naive": peers.naive_read_all,
                         "peer": peers.opencv_peer}, repeats_short)
    # The headline: the short clips as the pipeline's workers take them (short ones share ffmpeg
    # runs, extract.batch), against a bare decode of each, side by side.
    whole = _measure_set(short, {"ours": lambda: peers.ours_many(short),
                                 "bare": lambda: [peers.bare_decode(f) for f in short]}, repeats_short + 2)
    print(f"  short set: ours {whole['ours_cpu']:.3f}s bare {whole['bare_cpu']:.3f}s CPU", flush=True)
    print("  long clips:", flush=True)
    lg = _measure(long_, {"ours": peers.ours, "bare": peers.bare_decode, "naive": peers.naive_seek_each,
                          "peer": peers.opencv_peer}, repeats_long)
    strategies = _strategy_table(long_, 1)
    both = {**s, **lg}
    ratio = lambda d, a, b, sfx="_cpu": _sum(d, a + sfx) / _sum(d, b + sfx)
    # 'ours' over all clips: the short set as the workers take it, plus each long clip.
    ours_all = lambda sfx: whole["ours" + sfx] + _sum(lg, "ours" + sfx)
    all_ratio = lambda b, sfx="_cpu": ours_all(sfx) / (_sum(s, b + sfx) + _sum(lg, b + sfx))
    res = {
        "short_ratio": whole["ours_cpu"] / whole["bare_cpu"],
        "long_ratio": ratio(lg, "ours", "bare"),
        "naive_ratio": all_ratio("naive"),
        "peer_ratio": all_ratio("peer"),
        "short_alone_ratio": ratio(s, "alone", "bare"),
        "short_peer_ratio": whole["ours_cpu"] / _sum(s, "peer_cpu"),
        "long_peer_ratio": ratio(lg, "ours", "peer"),
        "wall": {"short_ratio": whole["ours"] / whole["bare"], "long_ratio": ratio(lg, "ours", "bare", ""),
                 "naive_ratio": all_ratio("naive", ""), "peer_ratio": all_ratio("peer", ""),
                 "short_alone_ratio": ratio(s, "alone", "bare", ""),
                 "short_peer_ratio": whole["ours"] / _sum(s, "peer"), "long_peer_ratio": ratio(lg, "ours", "peer", "")},
        "goals": {"short_ratio": 1.3, "long_ratio": 1.0, "naive_ratio": 0.5, "peer_ratio": 1.0},
        "frames": peers.N,
        "method": ("short clips: our sampler over the whole set as a pipeline worker takes it (short clips share "
                   "ffmpeg runs) against a bare decode of each clip, best of %d interleaved runs; long clips and "
                   "the per-file figures: best of %d (short) / %d (long) interleaved runs per file, summed. Ratios "
                   "of CPU seconds (this process + ffmpeg: the work, robust to other load on a shared machine; "
                   "wall-clock ratios under 'wall'); every method single-threaded, with the worker's malloc "
                   "settings; naive = read every frame then pick (short clips) or one ffmpeg seek per sample "
                   "(long clips)") % (repeats_short + 2, repeats_short, repeats_long),
        "short_set_seconds": whole,
        "per_file_seconds": {os.path.basename(k): v for k, v in both.items()},
        "long_strategies": strategies,
        "header_fallbacks": fallbacks(common.real_videos() + common.demo_videos() + long_),
    }
    common.write_result("decode", res)
    rows = [(k, f"{res[k]:.3f}", f"{res['wall'][k]:.3f}", res["goals"].get(k, ""),
             common.goal(res[k], res["goals"][k]) if k in res["goals"] else "")
            for k in ("short_ratio", "long_ratio", "naive_ratio", "peer_ratio", "short_alone_ratio", "short_peer_ratio",
                      "long_peer_ratio")]
    print(common.table(["figure", "CPU", "wall", "goal (at most)", ""], rows))
    return res


if __name__ == "__main__":
    if sys.argv[1:2] == ["fallback"]:
        fallback_only()
    else:
        main(*[int(a) for a in sys.argv[1:3]])
