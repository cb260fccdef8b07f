"""Compare backbones: caches of the same videos under different backbones, each with its runs, in one table."""
import json
from itertools import combinations
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from cache.reader import CacheReader, open_cache
from evaluate import metrics as M
from evaluate.head_table import score_runs
from evaluate.heads import BATCH, test_rows
from evaluate.runs import find_runs
from evaluate.seeds import group_results, pooled_hits
from train.method import as_float32
from train.splits import id_order

ZERO_SHOT = "zero-shot (mean-pool)"


def _label(reader: CacheReader) -> str:
    random = reader.random_weights and not reader.clip_model.startswith("random:")
    return reader.clip_model + (" (random weights)" if random else "")


def zero_shot_hits(reader: CacheReader, rows: np.ndarray) -> np.ndarray:
    """[T] top-1 hits of the backbone's zero-shot classifier (mean-pooled frames against the cache's class
    text, the meanpool baseline) on `rows`, read a batch at a time."""
    from train.baselines import BaselineMethod
    method = BaselineMethod("meanpool", list(reader.class_names), {})
    text = as_float32(reader.text_emb)                                         # [C, D]
    hits = [np.zeros(0, bool)]
    for s in range(0, len(rows), BATCH):
        part = rows[s:s + BATCH]
        logits = method.logits(as_float32(reader.emb(part)), text)             # [b, C]
        hits.append(logits.argmax(axis=1) == reader.labels[part])
    return np.concatenate(hits).astype(np.float64)


def _backbone(cache: str, runs_dir: str, device: str, resamples: int, warnings: List[str],
              progress: bool) -> Dict[str, Any]:
    """One backbone's heads: table rows by head name, and each head's per-video hits keyed by video id."""
    with open_cache(cache) as reader:
        runs, notes = find_runs(runs_dir, reader.num_videos)
        warnings.extend(f"{_label(reader)}: {n}" for n in notes)
        results = score_runs(runs, reader, device, resamples, warnings, progress)
        heads, hits, test_ids = {}, {}, None
        for row, members in group_results(results, runs_dir, resamples):
            heads[row["name"]] = row
            h = pooled_hits(members)
            if h is not None and members[0].scorer is not None:
                ids = [str(v) for v in reader.ids[members[0].scorer.rows]]
                hits[row["name"]] = dict(zip(ids, h))
            if test_ids is None and members[0].run.split.get("test"):
                test_ids = [str(v) for v in reader.ids[test_rows(reader, members[0].run)]]
        return {"cache": cache, "runs_dir": runs_dir, "clip_model": reader.clip_model,
                "label": _label(reader), "weights_hash": str(reader.settings.get("weights_hash", "")),
                "random_weights": reader.random_weights, "dim": reader.dim, "frames": reader.frames,
                "videos": reader.num_videos, "fingerprint": reader.fingerprint,
                "preprocess": json.loads(reader.settings.get("preprocess") or "{}"),
                "heads": heads, "_hits": hits, "_test_ids": test_ids}


def _common_test_ids(backbones: List[Dict[str, Any]]) -> List[str]:
    """The test videos every backbone's first run holds out (every labelled video when none has a split)."""
    sets = [set(b["_test_ids"]) for b in backbones if b["_test_ids"] is not None]
    if not sets:
        return []
    common = set.intersection(*sets)
    return sorted(common)


def _zero_shot(backbones: List[Dict[str, Any]], ids: List[str], resamples: int) -> None:
    """Each backbone's zero-shot top-1 (with interval) on the common test videos, hits kept for pairing."""
    for b in backbones:
        with open_cache(b["cache"]) as reader:
            where = {str(v): i for i, v in enumerate(reader.ids) if reader.labels[i] >= 0}
            if ids:
                mine = [v for v in ids if v in where]
            else:   # no split anywhere: every labelled video
                mine = [str(v) for v in np.asarray(list(where), dtype=object)[id_order(list(where))]]
            rows = np.array([where[v] for v in mine], np.int64)
            hits = zero_shot_hits(reader, rows) if len(rows) else np.zeros(0)
        b["zero_shot"] = {**M.bootstrap_mean_ci(hits, resamples), "videos": int(len(hits))}
        b["_hits"][ZERO_SHOT] = dict(zip(mine, hits))


def _paired(backbones: List[Dict[str, Any]], resamples: int) -> List[Dict[str, Any]]:
    """Paired bootstrap between every two backbones, per head they share, on the test videos both scored."""
    out = []
    for a, b in combinations(backbones, 2):
        for head in [h for h in a["_hits"] if h in b["_hits"]]:
            ha, hb = a["_hits"][head], b["_hits"][head]
            ids = sorted(set(ha) & set(hb))
            if not ids:
                continue
            gap = M.paired_bootstrap(np.array([ha[v] for v in ids]), np.array([hb[v] for v in ids]), resamples)
            out.append({"head": head, "a": a["label"], "b": b["label"], **gap})
    return out


def compare(caches: List[str], runs_dirs: List[str], device: str = "auto", resamples: int = 1000,
            progress: bool = True) -> Dict[str, Any]:
    """Everything the comparison report shows (JSON-able); caches are read one at a time."""
    warnings: List[str] = []
    backbones = [_backbone(c, r, device, resamples, warnings, progress) for c, r in zip(caches, runs_dirs)]
    fps = [b["fingerprint"] for b in backbones]
    if len(set(fps)) < len(fps):
        warnings.append("two of these caches live in the same embedding space (same weights, N and sampler): "
                        "they compare the same backbone")
    ids = _common_test_ids(backbones)
    _zero_shot(backbones, ids, resamples)
    heads: List[str] = []
    for b in backbones:
        heads += [h for h in b["heads"] if h not in heads]
    data = {"backbones": backbones, "heads": heads, "common_test_videos": len(ids),
            "paired": _paired(backbones, resamples), "warnings": warnings}
    for b in backbones:
        b.pop("_hits")
        b.pop("_test_ids")
    return data


def table(data: Dict[str, Any]) -> Tuple[List[str], List[List[Any]]]:
    """(headers, rows) of the backbone x head table: test top-1 stats per head (rows) and backbone."""
    headers = ["head"] + [b["label"] for b in data["backbones"]]
    rows: List[List[Any]] = [[ZERO_SHOT] + [b["zero_shot"] for b in data["backbones"]]]
    for head in data["heads"]:
        rows.append([head] + [(b["heads"].get(head) or {}).get("top1") for b in data["backbones"]])
    return headers, rows


def best_backbone(data: Dict[str, Any], head: str = ZERO_SHOT) -> Optional[str]:
    """The backbone with the highest test top-1 for `head` (zero-shot by default)."""
    _, rows = table(data)
    row = next((r for r in rows if r[0] == head), None)
    if row is None:
        return None
    values = [(s or {}).get("value", float("nan")) for s in row[1:]]
    finite = [i for i, v in enumerate(values) if np.isfinite(v)]
    return data["backbones"][max(finite, key=lambda i: values[i])]["label"] if finite else None
