"""Turn collected numbers into report sections and write report.html, report.md, metrics.json and PNGs."""
import math
import os
from typing import Any, Dict, List, Optional

from evaluate import sections as S
from evaluate.html import render_html
from evaluate.markdown import render_markdown
from clipvid.atomic import write_bytes, write_text
from clipvid.jsonfile import json_text

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
            ["runs", runs_dir], ["generated (UTC)", p["generated"]],
            ["clipvid commit", p.get("git_commit") or "not a git checkout"]]
    rows += [[f"{name} version", v or "not installed"] for name, v in (p.get("packages") or {}).items()]
    blocks = [S.table(["what", "value"], rows, numeric=False)]
    if p.get("commands"):
        blocks += [S.text("Command lines of the runs:"),
                   S.bullets([f"{c['run']}: {c['command']}" for c in p["commands"]])]
    if p["failures"]:
        blocks += [S.text("Videos that could not be used:"),
                   S.bullets([f"{f['id']}: {f['reason']}" for f in p["failures"]])]
    return S.Section("Provenance", "provenance", blocks)


def mean_sd(stat: Dict[str, float]) -> str:
    """'61.0 ± 2.3 (3 seeds)' in percent; just the seed count's value when there is one seed."""
    if not stat or not stat.get("n"):
        return "-"
    if stat["n"] < 2:
        return f"{pct(stat['mean'])} (1 seed)"
    return f"{pct(stat['mean'])} ± {pct(stat['sd'])} ({stat['n']} seeds)"


def _settings(h: Dict[str, Any]) -> str:
    seeds = [s for s in h.get("seeds") or [] if s is not None]
    runs = [str(e) for e in h.get("epochs_run") or [] if e]
    parts = [f"{h['frames']} fr." if h.get("frames") else "", f"seed {','.join(map(str, seeds))}" if seeds else "",
             f"{h['epochs']} ep. max, ran {'/'.join(runs)}" if h.get("epochs") and runs else ""]
    return "; ".join(p for p in parts if p)


def _gap(g: Optional[Dict[str, Any]]) -> List[S.Block]:
    if not g:
        return []
    if "diff" not in g:
        return [S.text(f"{g['best']} and {g['next']} were tested on different videos, so their gap is not tested.")]
    verdict = ("the interval excludes 0: the gap is real on this test set" if g["low"] > 0 else
               "the interval includes 0: this test set cannot tell them apart")
    return [S.text(f"Best against next: {g['best']} - {g['next']} = {pct(g['diff'])} points of test top-1, "
                   f"95% paired bootstrap interval [{pct(g['low'])}, {pct(g['high'])}] over {g['videos']} test "
                   f"videos (resamples with no gain: {100 * g['p_not_better']:.1f}%); {verdict}.")]


def _heads(data: Dict[str, Any]) -> S.Section:
    heads = data["heads"]
    if not heads:
        return S.Section("Heads", "heads", [S.text("No usable runs were found.")])
    rows, best = [], []
    for i, h in enumerate(heads):
        rows.append([h["name"], _settings(h), mean_sd(h.get("val_top1") or {}), with_ci(h["top1"]),
                     mean_sd(h.get("top1_seeds") or {}), with_ci(h["top5"]), with_ci(h["mean_class"]),
                     h["test_videos"], num(h.get("seconds"), 1), h.get("source", "")])
        if h["name"] == data.get("best_head"):
            best.append(i)
    return S.Section("Heads", "heads", [
        S.table(["head and settings", "frames; seeds; epochs", "val top-1 %", "test top-1 % [95% CI]",
                 "test top-1 over seeds", "top-5 % [95% CI]", "mean class % [95% CI]", "test videos",
                 "training s", "source"], rows, highlight=best),
        S.text("Test figures are on each run's test split only. Intervals: percentile bootstrap over test videos "
               "(fixed seed; with several seeds, of the per-video hit rate averaged over the seeds); "
               "'over seeds': mean ± standard deviation of the seeds' own top-1. "
               f"Highlighted: the best head, chosen on {data.get('best_chosen_by') or 'validation top-1'}. "
               "'recomputed' = scored here through train.api; 'predictions.csv' = the head would not load."),
        *_gap(data.get("best_gap"))])


def _frames(data: Dict[str, Any]) -> S.Section:
    curves = data.get("frames_curve") or {}
    if not curves:
        return S.Section("Accuracy against number of frames", "frames", [S.text("No head could be re-scored.")])
    ks = sorted({k for c in curves.values() for k in c["frames"]})
    rows = [[name] + [pct(dict(zip(c["frames"], c["top1"])).get(k)) for k in ks] for name, c in curves.items()]
    return S.Section("Accuracy against number of frames", "frames", [
        S.figure("frames_curve.png", "Test top-1 against the number of evenly spaced frames each head sees"),
        S.table(["head"] + [f"{k} fr." for k in ks], rows)])


def _few_shot(data: Dict[str, Any]) -> Optional[S.Section]:
    few = data.get("few_shot")
    if not few:
        return None
    title = "Few-shot: accuracy against labelled videos per class"
    notes = [S.bullets(few["notes"])] if few["notes"] else []
    if not few["curves"]:
        return S.Section(title, "few-shot", [S.text("No few-shot curves."), *notes])
    ks = few["shots"]
    cell = (lambda c, i: f"{pct(c['mean'][i])} ± {pct(c['sd'][i])}")
    rows = [[name] + [cell(c, c["shots"].index(k)) if k in c["shots"] else "-" for k in ks]
            for name, c in few["curves"].items()]
    draws = ", ".join(map(str, few["draws"]))
    return S.Section(title, "few-shot", [
        S.figure("fewshot.png", "Test top-1 of each head retrained on K labelled videos per class "
                                "(mean over the draws, band: ± one standard deviation)"),
        S.table(["head and settings"] + [f"K = {k}" for k in ks], rows),
        S.text(f"Each head and the linear probe is retrained as its run was (settings and frames; at most "
               f"{few['max_epochs']} epochs) on K videos of every class drawn from its run's training split, "
               f"with no validation set (the last epoch is kept; the probe uses C = 1), and scored on the whole "
               f"test split through training's own scoring pass. Draws (seeds {draws}) pick the videos and the "
               f"initial weights; every head gets the same videos in a draw, and a draw's K-shot set is inside "
               f"its 2K-shot set. Cells: test top-1 %, mean ± sd over the {len(few['draws'])} draws."),
        *notes])


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
        blocks += [S.text(f"Class prompts as text queries over {r.get('scope', 'the test videos')} (relevant: the "
                          "class's videos). R@K: share of queries with a relevant video in the top K. No head is "
                          "scored on a video it trained on."),
                   S.table(["video embedding", "mAP %", "R@1 %", "R@5 %", "R@10 %", "queries"], rows)]
    if r.get("captions"):
        rows = [[name, pct(m["R@1"]), pct(m["R@5"]), pct(m["R@10"]), num(m["median_rank"], 1),
                 num(m["mean_rank"], 1), m["queries"]] for name, m in r["captions"].items()]
        blocks += [S.text(f"Caption-to-video over {r.get('scope', 'the test videos')}, as CLIP4Clip reports it on "
                          "its test split (rank 1 = best)."),
                   S.table(["video embedding", "R@1 %", "R@5 %", "R@10 %", "MdR", "MnR", "captions"], rows)]
    if not r.get("class_prompts"):
        blocks.append(S.text("Class prompts: the cache has no labelled videos to rank."))
    if r.get("captions_note"):
        blocks.append(S.text(f"Captions: {r['captions_note']}."))
    return S.Section("Text-to-video retrieval", "retrieval", blocks)


def _open_set(o: Dict[str, Any]) -> Optional[S.Section]:
    if not o:
        return None
    na = (lambda v: "n/a" if v is None else pct(v))  # a head with no logit for unseen text cannot score them
    rows = [[name, pct(m["seen"]), na(m["unseen"]), na(m["harmonic"]), num(m["auroc_unknown"], 3),
             f"{m['classes_seen']}/{m['classes_unseen']}", f"{m['videos_seen']}/{m['videos_unseen']}"]
            for name, m in o.items() if "note" not in m]
    notes = [f"{name}: not scored, {m['note']}." for name, m in o.items() if "note" in m]
    held = sorted({c for m in o.values() for c in m.get("unseen_classes", [])})
    return S.Section("Open set", "open-set", [
        S.table(["head", "seen %", "unseen %", "H %", "AUROC unknown", "classes seen/unseen",
                 "test videos seen/unseen"], rows),
        S.text("Test videos classified among seen + held-out classes by each head's own logits (the numbers "
               "training printed); H = harmonic mean; n/a: the head has no logit for a class it never saw "
               "(the linear probe). AUROC: telling known from unknown videos by their largest logit over the "
               "seen classes."),
        S.text("Held-out classes: " + ", ".join(held)), *([S.bullets(notes)] if notes else [])])


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
    out = [_summary(data), _heads(data), _frames(data), _few_shot(data), _best(data)]
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


def write_report(out_dir: str, data: Dict[str, Any], figures: Dict[str, bytes]) -> List[str]:
    """Write every output file into out_dir; returns their paths."""
    banner = RANDOM_BANNER if data["provenance"]["random_weights"] else None
    return write_files(out_dir, TITLE, build_sections(data), data, figures, banner)


def write_files(out_dir: str, title: str, sections: List[S.Section], data: Dict[str, Any],
                figures: Dict[str, bytes], banner: Optional[str]) -> List[str]:
    """report.html, report.md, metrics.json (`data`) and the PNGs into out_dir; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name, png in figures.items():
        written.append(os.path.join(out_dir, name))
        write_bytes(written[-1], png)
    texts = {"report.html": render_html(title, sections, figures, banner),
             "report.md": render_markdown(title, sections, banner), "metrics.json": json_text(data)}
    for name, body in texts.items():
        written.append(os.path.join(out_dir, name))
        write_text(written[-1], body)
    return written
