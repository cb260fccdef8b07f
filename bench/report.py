"""`python -m bench.report`: the Markdown table of every figure in bench/results/*.json (for PERFORMANCE.md)."""
import json
import os
from typing import List, Tuple

from bench.common import RESULTS, goal, table
from bench import common


def _load(name: str) -> dict:
    path = os.path.join(RESULTS, f"{name}.json")
    return json.load(open(path)) if os.path.exists(path) else {}


def rows() -> List[Tuple[str, str, str, str]]:
    out = []
    d = _load("decode")
    for k in ("short_ratio", "long_ratio", "peer_ratio_short", "peer_ratio_long_sparse", "peer_ratio_long_dense"):
        if k in d:
            best = d.get("classes", {}).get(k[len("peer_ratio_"):], {}).get("best_peer")
            what = f"decode `{k}` (CPU; wall {d['wall'][k]:.2f}{'; best peer ' + best if best else ''})"
            out.append((what, f"{d[k]:.2f}", f"<= {d['goals'][k]}",
                        goal(d[k], d["goals"][k] - (1e-9 if k == "long_ratio" else 0))))
    if "header_fallbacks" in d:
        fb = d["header_fallbacks"]
        out.append((f"decode header fallbacks, ordinary files ({fb['read_in_process']} of {fb['files']} read "
                    "in-process)", f"{fb['fallbacks']}", "0", goal(fb["fallbacks"], 0)))
    p = _load("pipeline")
    for spec, m in p.get("models", {}).items():
        out.append((f"pipeline {spec}: videos/s, 1 / 2 workers", f"{m['videos_per_s_1_worker']:.2f} / "
                    f"{m['videos_per_s_2_workers']:.2f}", "", ""))
        out.append((f"pipeline {spec}: `overlap` (CPU-only bound {m['overlap_cpu_bound']:.2f})", f"{m['overlap']:.2f}",
                    ">= 0.85", goal(m["overlap"], 0.85, below=False)))
        if "overlap_of_ceiling" in m:
            out.append((f"pipeline {spec}: `overlap_of_ceiling`", f"{m['overlap_of_ceiling']:.2f}", ">= 0.9",
                        goal(m["overlap_of_ceiling"], 0.9, below=False)))
        out.append((f"pipeline {spec}: `scaling_efficiency`", f"{m['scaling_efficiency']:.2f}", ">= 0.9",
                    goal(m["scaling_efficiency"], 0.9, below=False)))
    e = _load("embed")
    for b, v in sorted(e.get("cpu_images_per_s", {}).items(), key=lambda kv: int(kv[0])):
        out.append((f"embed ViT-B/32 CPU, batch {b}: images/s", f"{v:.1f}", "", ""))
    if "cpu_bf16_autocast_images_per_s_batch_32" in e:
        out.append(("embed ViT-B/32 CPU bf16 autocast, batch 32 (not used)", f"{e['cpu_bf16_autocast_images_per_s_batch_32']:.1f}", "", ""))
    if e:
        out.append(("embed GPU fp32/fp16", "none lent" if e.get("gpu") is None else json.dumps(e["gpu"]), "", ""))
    t = _load("train")
    for h, v in t.get("heads", {}).items():
        out.append((f"train {h}: s/epoch (in memory), peak RSS MiB", f"{v['seconds_per_epoch']:.1f} ({v['in_memory_seconds']:.1f}), "
                    f"{v['peak_rss_mib']:.0f}", "", ""))
        cpu = v.get("overhead_cpu", v["overhead"])
        out.append((f"train {h}: `overhead` (CPU; wall {v['overhead']:.2f})", f"{cpu:.2f}", "<= 1.2", goal(cpu, 1.2)))
    m = _load("memory")
    for n, v in m.get("runs", {}).items():
        out.append((f"memory: peak RSS over {n} videos (MiB, all processes)", f"{v['peak_total_mib']:.0f}", "", ""))
    if "rss_growth" in m:
        out.append(("memory `rss_growth`", f"{m['rss_growth']:.2f}", "<= 1.2", goal(m["rss_growth"], 1.2)))
    s = _load("search")
    if s and "scan_ms" in s:
        for v, ms in s["rank_ms"].items():
            out.append((f"search kernels over {int(v):,} videos: packed int8 / scan ms (packing s, recall@10)",
                        f"{ms:.0f} / {s['scan_ms'][v]:.0f} ({s['pack_s'][v]:.1f}, {s['recall_at_10'][v]:.3f})", "", ""))
    q = _load("scale_search") or _load("scale")   # bench.scale runs bench.scale_search's figures too
    if "search_ms_1m_warm" in q:
        out.append(("search `search_ms_1m_warm` (served page's query path, 1M)", f"{q['search_ms_1m_warm']:.0f}",
                    "<= 100", goal(q["search_ms_1m_warm"], 100)))
        out.append(("search: text encoder / rank / best moments, ms", f"{q['text_ms']:.0f} / {q['rank_ms']:.0f} / "
                                                                     f"{q['moments_ms']:.1f}", "", ""))
        out.append(("search `search_s_1m_cold` (beyond CLIP load, 1M)", f"{q['search_s_1m_cold']:.2f}", "<= 3",
                    goal(q["search_s_1m_cold"], 3)))
    return out + _scale_rows(_load("scale"))


def _scale_rows(c: dict) -> List[Tuple[str, str, str, str]]:
    """bench.scale: appends to a 200,000-video cache."""
    if "append_ratio" not in c:
        return []
    m = c["metadata"]
    return [("scale: append 1,000 videos to an empty / 200,000-video cache, s",
             f"{c['append_s_empty']:.2f} / {c['append_s_200k']:.2f}", "", ""),
            ("scale `append_ratio`", f"{c['append_ratio']:.2f}", "<= 1.5", goal(c["append_ratio"], 1.5)),
            ("scale `append_disk_ratio`", f"{c['append_disk_ratio']:.2f}", "<= 1.5", goal(c["append_disk_ratio"], 1.5)),
            (f"scale: at {m['videos']:,} videos: reader open s, manifest MB (write s)",
             f"{m['reader_open_s']:.2f}, {m['manifest_bytes'] / 1e6:.1f} ({m['manifest_write_s']:.2f})", "", ""),
            ("scale: content fingerprint per clip, ms (2 MiB read)", f"{c['fingerprint']['fixture_clips_ms']:.1f}", "", "")]


if __name__ == "__main__":
    common.exit_on_help(__doc__)
    print(table(["figure", "value", "goal", ""], rows()))
