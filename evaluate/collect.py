"""Compute everything a report shows from a cache and a runs folder: numbers plus PNG figures."""
import datetime
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from cache.reader import CacheReader
from evaluate import plots
from evaluate.clip_text import ClipMismatch, encode, load_text_encoder
from evaluate.fewshot import DRAWS, few_shot
from evaluate.head_table import HeadResult, confusion_block, score_runs
from evaluate.heads import test_rows
from evaluate.openset import open_set_scores
from evaluate.provenance import git_commit, package_versions, run_commands
from evaluate.retrieval import caption_retrieval, class_prompt_retrieval
from evaluate.runs import find_runs
from evaluate.seeds import group_results, paired_gap, rank_groups
from evaluate.tsne import safe_tsne
from evaluate.video_emb import mean_pooled, release

MEANPOOL = "CLIP mean-pool"


def provenance(reader: CacheReader) -> Dict[str, Any]:
    """What the numbers were computed from."""
    return {"cache": os.path.abspath(reader.path), "clip_model": reader.clip_model,
            "weights_hash": str(reader.settings.get("weights_hash", "")), "random_weights": reader.random_weights,
            "frames": reader.frames, "dim": reader.dim, "videos": reader.num_videos,
            "classes": len(reader.class_names), "fingerprint": reader.fingerprint,
            "failures": [{"id": i, "reason": r} for i, r in reader.failures],
            "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "packages": package_versions(), "git_commit": git_commit()}


def _retrieval(reader: CacheReader, sources: Dict[str, np.ndarray], rows: np.ndarray, clip_spec: Optional[str],
               device: str, progress: bool) -> Dict[str, Any]:
    """Class-prompt and caption retrieval among the videos in `rows` only (sorted cache rows, the test split)."""
    labels = reader.labels[rows]
    out: Dict[str, Any] = {"class_prompts": {}, "captions": None, "captions_note": "", "videos": int(len(rows))}
    if (labels >= 0).any() and len(reader.class_names):
        for name, emb in sources.items():
            out["class_prompts"][name] = class_prompt_retrieval(emb[rows], labels, reader.text_emb)
            release(emb)
    captioned = np.array([i for i in rows if str(reader.captions[i]).strip()], np.int64)
    if not len(captioned):
        out["captions_note"] = "no video among these has a caption"
        return out
    try:
        clip_ = load_text_encoder(reader, clip_spec, device)
    except ClipMismatch as exc:
        out["captions_note"] = f"caption retrieval skipped: {exc}"
        return out
    caption_emb = encode(clip_, [str(reader.captions[i]) for i in captioned], progress=progress)  # [Q, D]
    gt = np.searchsorted(rows, captioned)                                   # [Q] position among rows
    out["captions"] = {name: caption_retrieval(emb[rows], caption_emb, gt) for name, emb in sources.items()}
    return out


def _retrieval_sources(reader: CacheReader, pooled: np.ndarray, results: List[HeadResult],
                       best: Optional[HeadResult], warnings: List[str]) -> Tuple[Dict[str, np.ndarray], np.ndarray, str]:
    """(embeddings by name, rows to search, what the rows are): the best run's test split, never training videos."""
    if best is None:
        return {MEANPOOL: pooled}, np.arange(reader.num_videos), "every video (no run to take a test split from)"
    rows = np.sort(test_rows(reader, best.run))
    ids = {str(reader.ids[i]) for i in rows}
    sources = {MEANPOOL: pooled}
    for r in results:
        if r.run.video_emb is None:
            continue
        if ids & (set(r.run.split.get("train", [])) | set(r.run.split.get("val", []))):
            warnings.append(f"retrieval: {r.run.name} left out, it trained on some of {best.run.name}'s test videos")
            continue
        sources[r.run.name] = r.run.video_emb
    return sources, rows, f"the {len(rows)} test videos of {best.run.name}'s split"


def _open_set(reader: CacheReader, results: List[HeadResult]) -> Dict[str, Any]:
    """Open-set figures of every open-set run whose head loaded, from the logits its table row came from."""
    out = {}
    for res in results:
        spec = res.run.open_set
        if not spec:
            continue
        if res.scorer is None or res.logits is None:
            out[res.run.name] = {"note": "the head would not load, so there are no logits to score it with"}
            continue
        scores = open_set_scores(res.logits, res.scorer.cand_idx, res.truth, reader.class_names,
                                 list(spec.get("seen") or []), list(spec.get("unseen") or []),
                                 res.scorer.method.scores_any_text)
        if scores is None:
            continue
        for block in ("test_seen", "test_unseen"):
            if isinstance(res.run.metrics.get(block), dict):
                scores[f"run_{block}_top1"] = res.run.metrics[block].get("top1")
        scores["unseen_classes"] = list(spec.get("unseen") or [])
        out[res.run.name] = scores
    return out


def _tsne_rows(reader: CacheReader) -> np.ndarray:
    """[S] sorted cache rows the t-SNE draws: every labelled video, or a fixed sample of them."""
    rows = np.flatnonzero(reader.labels >= 0)
    return rows[plots.sample_for_tsne(len(rows))]


def _tsne(reader: CacheReader, pooled: np.ndarray, best: Optional[HeadResult]) -> Tuple[Optional[bytes], str]:
    """(PNG or None, note): mean-pooled CLIP next to the best head, same labelled videos, test ones ringed."""
    rows = _tsne_rows(reader)
    if not len(rows):
        return None, "the cache has no labelled videos to draw"
    panels = [("CLIP mean-pool", pooled[rows])]
    marked = None
    if best is not None:
        marked = np.isin(rows, test_rows(reader, best.run))
        if best.run.video_emb is not None:
            panels.append((best.run.name, best.run.video_emb[rows]))
        elif best.scorer is not None:
            panels.append((best.run.name, best.scorer.method.video_embeddings(reader.emb(rows))))
    layouts, titles, notes = [], [], []
    for title, emb in panels:
        xy, note = safe_tsne(emb)
        if note:
            notes.append(f"{title}: {note}")
        if xy is not None:
            layouts.append(xy)
            titles.append(title)
    if not layouts:
        return None, "; ".join(notes)
    return plots.tsne_pair(layouts, reader.labels[rows], reader.class_names, titles, marked), "; ".join(notes)


def collect(reader: CacheReader, runs_dir: str, device: str = "auto", resamples: int = 1000,
            clip_spec: Optional[str] = None, progress: bool = True, shots: Optional[List[int]] = None,
            draws: int = DRAWS) -> Tuple[Dict[str, Any], Dict[str, bytes]]:
    """(metrics.json content, {figure file name: PNG bytes}); `shots` as evaluate.fewshot.parse_shots gives."""
    runs, warnings = find_runs(runs_dir, reader.num_videos)
    if not runs:
        warnings.append(f"no usable run folders in {runs_dir}")
    commands = run_commands(runs)                                           # before names become settings
    results = score_runs(runs, reader, device, resamples, warnings, progress)
    groups = group_results(results, runs_dir, resamples)                    # one per head and settings
    order, chosen_by = rank_groups(groups)
    best = groups[order[0]][1][0] if order else None
    results = [members[0] for _, members in groups]                         # first seed speaks for figures
    for (row, _), res in zip(groups, results):
        res.run.name = row["name"]                                          # figures and tables name the settings
    # Mean-pooled CLIP for what the report draws on: the best run's test split (retrieval) and the t-SNE
    # sample; every video only when no run names a test split.
    need = None if best is None else np.union1d(test_rows(reader, best.run), _tsne_rows(reader))
    pooled = mean_pooled(reader, progress, need)                            # [V, D], `need` rows filled
    data: Dict[str, Any] = {"provenance": {**provenance(reader), "commands": commands},
                            "runs_dir": os.path.abspath(runs_dir),
                            "warnings": warnings, "heads": [row for row, _ in groups],
                            "best_head": groups[order[0]][0]["name"] if order else None,
                            "best_chosen_by": chosen_by, "figures": []}
    if len(order) > 1:
        data["best_gap"] = {"best": groups[order[0]][0]["name"], "next": groups[order[1]][0]["name"],
                            **(paired_gap(groups[order[0]][1], groups[order[1]][1], resamples) or {})}
    figures: Dict[str, bytes] = {}
    curves = {r.run.name: r.curve for r in results if r.curve}
    data["frames_curve"] = curves
    if curves:
        figures["frames_curve.png"] = plots.frames_curve(curves)
    if best is not None and len(best.truth):
        block = confusion_block(best, reader.class_names)
        data["confusion"] = block
        names = reader.class_names
        figures["confusion.png"] = plots.confusion(np.array(block["matrix"]), names, f"Confusion: {best.run.name}")
        acc = np.array([np.nan if v is None else v for v in block["per_class"].values()])
        figures["per_class.png"] = plots.per_class(acc, names, f"Per-class accuracy: {best.run.name}")
    tsne, data["tsne_note"] = _tsne(reader, pooled, best)
    if tsne is not None:
        figures["tsne.png"] = tsne
    curves_png = plots.training_curves({r.run.name: r.run.history for r in results})
    if curves_png is not None:
        figures["training_curves.png"] = curves_png
    sources, rows, scope = _retrieval_sources(reader, pooled, results, best, warnings)
    data["retrieval"] = {**_retrieval(reader, sources, rows, clip_spec, device, progress), "scope": scope}
    data["open_set"] = _open_set(reader, results)
    own = [(row["name"], members[0].run) for row, members in groups if not row.get("cross_dataset")]
    data["few_shot"] = few_shot(reader.path, own, reader.frames, shots, draws, device, progress)
    if data["few_shot"]["curves"]:
        figures["fewshot.png"] = plots.fewshot_curve(data["few_shot"])
    data["figures"] = sorted(figures)
    return data, figures
