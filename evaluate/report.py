"""Turn collected numbers into report sections and write report.html, report.md, metrics.json and PNGs."""
import json
import math
import os
from typing import Any, Dict, List, Optional

from evaluate import sections as S
from evaluate.html import render_html
from evaluate.markdown import render_markdown

TITLE = "clipvid evaluation report"
RANDOM_BANNER = ("RANDOM CLIP WEIGHTS: these embeddings carry no learned meaning. "
                 "Accuracies measure the heads on noise, not CLIP.")


def pct(x: Any) -> str:
    return "-" if not isinstance(x, (int, float)) or not math.isfinite(x) else f"{100 * x:.1f}"


def num(x: Any, digits: int = 2) -> str:
    return "-" if not isinstance(x, (int, float)) or not math.isfinite(x) else f"{x:.{digits}f}"


def with_ci(stat: Dict[str, float]) -> str:
    """'63.2 [58.1, 68.0]' in percent; the interval is left out when there is none."""
    value = pct(stat.get("value"))
    if pct(stat.get("low")) == "-":
        return value
    return f"{value} [{pct(stat.get('low'))}, {pct(stat.get('high'))}]"


def _provenance(p: Dict[str, Any], runs_dir: str) -> S.Section:
    rows = [["CLIP model", p["clip_model"]], ["weights sha256", p["weights_hash"]],
            ["random weights", "YES" if p["random_weights"] else "no"], ["frames per video (N)", p["frames"]],
            ["embedding size (D)", p["dim"]], ["videos", p["videos"]], ["classes", p["classes"]],
            ["failed videos", len(p["failures"])], ["cache", p["cache"]], ["cache fingerprint", p["fingerprint"]],
            ["runs", runs_dir], ["generated (UTC)", p["generated"]]]
    blocks = [S.table(["what", "value"], rows, numeric=False)]
    if p["failures"]:
        blocks += [S.text("Videos that could not be used:"),
                   S.bullets([f"{f['id']}: {f['reason']}" for f in p["failures"]])]
    return S.Section("Provenance", "provenance", blocks)


def _heads(data: Dict[str, Any]) -> S.Section:
    heads = data["heads"]
    if not heads:
        return S.Section("Heads", "heads", [S.text("No usable runs were found.")])
    rows, best = [], []
    for i, h in enumerate(heads):
        rows.append([h["name"], with_ci(h["top1"]), with_ci(h["top5"]), with_ci(h["mean_class"]),
                     h["test_videos"], num(h.get("seconds"), 1), h.get("source", "")])
        if h["name"] == data.get("best_head"):
            best.append(i)
    return S.Section("Heads", "heads", [
        S.table(["head", "top-1 % [95% CI]", "top-5 % [95% CI]", "mean class % [95% CI]", "test videos",
                 "training s", "source"], rows, highlight=best),
        S.text("Intervals: percentile bootstrap over test videos (fixed seed). Highlighted: best top-1. "
               "'recomputed' = scored here through train.api; 'predictions.csv' = the head would not load.")])


def _frames(data: Dict[str, Any]) -> S.Section:
    curves = data.get("frames_curve") or {}
    if not curves:
        return S.Section("Accuracy against number of frames", "frames", [S.text("No head could be re-scored.")])
    ks = sorted({k for c in curves.values() for k in c["frames"]})
    rows = [[name] + [pct(dict(zip(c["frames"], c["top1"])).get(k)) for k in ks] for name, c in curves.items()]
    return S.Section("Accuracy against number of frames", "frames", [
        S.figure("frames_curve.png", "Test top-1 against the number of evenly spaced frames each head sees"),
        S.table(["head"] + [f"{k} fr." for k in ks], rows)])


def _best(data: Dict[str, Any]) -> Optional[S.Section]:
    block = data.get("confusion")
    if not block:
        why = "no head could be scored" if not data["heads"] else "the best head has no labelled test videos"
        return S.Section("Best head", "best", [S.text(f"No confusion matrix: {why}.")])
    rows = [[n, pct(a)] for n, a in block["per_class"].items() if a is not None]
    return S.Section(f"Best head: {block['head']}", "best", [
        S.figure("confusion.png", f"Confusion matrix of {block['head']} on its test split (rows: true class)"),
        S.figure("per_class.png", f"Per-class test accuracy of {block['head']}"),
        S.table(["class", "accuracy %"], rows)])


def _retrieval(r: Dict[str, Any]) -> S.Section:
    blocks: List[S.Block] = []
    if r.get("class_prompts"):
        rows = [[name, pct(m["mAP"]), pct(m["R@1"]), pct(m["R@5"]), pct(m["R@10"]), m["queries"]]
                for name, m in r["class_prompts"].items()]
        blocks += [S.text("Class prompts as text queries over all labelled videos (relevant: the class's videos). "
                          "R@K: share of queries with a relevant video in the top K. Trained heads saw the training "
                          "videos' labels, so their numbers here are optimistic; CLIP mean-pool is the fair baseline."),
                   S.table(["video embedding", "mAP %", "R@1 %", "R@5 %", "R@10 %", "queries"], rows)]
    if r.get("captions"):
        rows = [[name, pct(m["R@1"]), pct(m["R@5"]), pct(m["R@10"]), num(m["median_rank"], 1),
                 num(m["mean_rank"], 1), m["queries"]] for name, m in r["captions"].items()]
        blocks += [S.text("Caption-to-video over all videos, as CLIP4Clip reports it (rank 1 = best)."),
                   S.table(["video embedding", "R@1 %", "R@5 %", "R@10 %", "MdR", "MnR", "captions"], rows)]
    if not r.get("class_prompts"):
        blocks.append(S.text("Class prompts: the cache has no labelled videos to rank."))
    if r.get("captions_note"):
        blocks.append(S.text(f"Captions: {r['captions_note']}."))
    return S.Section("Text-to-video retrieval", "retrieval", blocks)


def _open_set(o: Dict[str, Any]) -> Optional[S.Section]:
    if not o:
        return None
    rows = [[name, pct(m["seen"]), pct(m["unseen"]), pct(m["harmonic"]), num(m["auroc_unknown"], 3),
             f"{m['classes_seen']}/{m['classes_unseen']}", f"{m['videos_seen']}/{m['videos_unseen']}"]
            for name, m in o.items()]
    held = sorted({c for m in o.values() for c in m.get("unseen_classes", [])})
    return S.Section("Open set", "open-set", [
        S.table(["head", "seen %", "unseen %", "H %", "AUROC unknown", "classes seen/unseen",
                 "test videos seen/unseen"], rows),
        S.text("Test videos classified among seen + held-out class prompts by cosine; H = harmonic mean. "
               "AUROC: telling known from unknown videos by their best cosine with a seen class."),
        S.text("Held-out classes: " + ", ".join(held))])


def _tsne(data: Dict[str, Any]) -> S.Section:
    blocks: List[S.Block] = []
    if "tsne.png" in data["figures"]:
        blocks.append(S.figure("tsne.png", "t-SNE (seed 0) of mean-pooled CLIP embeddings next to the best head's, "
                                           "coloured by class; ringed: the best head's test videos"))
    note = data.get("tsne_note")
    if note:
        blocks.append(S.text(("Not drawn: " if not blocks else "Note: ") + note + "."))
    return S.Section("t-SNE of video embeddings", "tsne", blocks)


def _summary(data: Dict[str, Any]) -> S.Section:
    p = data["provenance"]
    line = (f"CLIP {p['clip_model']} (weights {p['weights_hash'][:12]}{', RANDOM' if p['random_weights'] else ''}), "
            f"N = {p['frames']} frames per video, {p['videos']} videos, {p['classes']} classes, "
            f"{len(p['failures'])} failed videos, {len(data['heads'])} heads; best head: {data.get('best_head') or '-'}.")
    blocks = [S.text(line)]
    cross = [h for h in data["heads"] if h.get("cross_dataset")]
    if cross:  # issue 10: say plainly that these heads were trained on another cache
        blocks.append(S.text(f"Cross-dataset evaluation: {', '.join(h['name'] for h in cross)} were trained on "
                             "another cache; each is scored on every labelled video here whose class it knows "
                             f"({', '.join(str(h['test_videos']) for h in cross)} videos)."))
    return S.Section("Summary", "summary", blocks)


def build_sections(data: Dict[str, Any]) -> List[S.Section]:
    """Every section of the report, in reading order."""
    out = [_summary(data), _heads(data), _frames(data), _best(data)]
    out.append(_tsne(data))
    out.append(S.Section("Training curves", "curves", [S.figure(
        "training_curves.png", "Loss and validation accuracy per epoch of the trained heads")]
        if "training_curves.png" in data["figures"] else [S.text("No trained head (lstm, transformer, xclip) "
                                                                 "among these runs, so no curves.")]))
    out += [_retrieval(data["retrieval"]), _open_set(data.get("open_set") or {})]
    if data["warnings"]:
        out.append(S.Section("Warnings", "warnings", [S.bullets(data["warnings"], css="warn")]))
    out.append(_provenance(data["provenance"], data["runs_dir"]))
    return [s for s in out if s is not None]


def _json_safe(x: Any) -> Any:
    """NaN is not JSON: write null instead."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def write_report(out_dir: str, data: Dict[str, Any], figures: Dict[str, bytes]) -> List[str]:
    """Write every output file into out_dir; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    banner = RANDOM_BANNER if data["provenance"]["random_weights"] else None
    sections = build_sections(data)
    written = []
    for name, png in figures.items():
        written.append(os.path.join(out_dir, name))
        with open(written[-1], "wb") as f:
            f.write(png)
    texts = {"report.html": render_html(TITLE, sections, figures, banner),
             "report.md": render_markdown(TITLE, sections, banner),
             "metrics.json": json.dumps(_json_safe(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"}
    for name, body in texts.items():
        written.append(os.path.join(out_dir, name))
        with open(written[-1], "w", encoding="utf-8") as f:
            f.write(body)
    return written
