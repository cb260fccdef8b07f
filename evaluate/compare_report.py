"""The backbone comparison as report sections: backbones, backbone x head table, zero-shot, paired gaps."""
from typing import Any, Dict, List

from evaluate import sections as S
from evaluate.compare import ZERO_SHOT, best_backbone, table
from evaluate.report import RANDOM_BANNER, pct, with_ci, write_files

TITLE = "clipvid backbone comparison"


def _preprocess(p: Dict[str, Any]) -> str:
    if not p:
        return "not recorded (OpenAI CLIP's)"
    mean = "/".join(f"{x:.3g}" for x in p.get("mean", []))
    std = "/".join(f"{x:.3g}" for x in p.get("std", []))
    how = "centre crop" if p.get("resize") == "crop" else "squash"
    return f"{p.get('size')} px, {how}, {p.get('interpolation')}; mean {mean}, std {std}"


def _backbones(data: Dict[str, Any]) -> S.Section:
    rows = [[b["label"], b["weights_hash"][:12], b["dim"], b["frames"], b["videos"], _preprocess(b["preprocess"]),
             b["cache"]] for b in data["backbones"]]
    best = best_backbone(data)
    return S.Section("Backbones", "backbones", [
        S.table(["backbone", "weights", "D", "N", "videos", "preprocessing", "cache"], rows, numeric=False),
        S.text(f"Best zero-shot top-1: {best or '-'}; {data['common_test_videos']} test videos shared by every "
               "backbone's runs.")])


def _table(data: Dict[str, Any]) -> S.Section:
    headers, rows = table(data)
    cells = [[head] + [with_ci(s) if s else "-" for s in stats] for head, *stats in rows]
    return S.Section("Test top-1 by backbone and head", "table", [
        S.table([h + (" top-1 % [95% CI]" if i else "") for i, h in enumerate(headers)], cells),
        S.text(f"{ZERO_SHOT}: each backbone's mean-pooled frames against its own class text embeddings, on the "
               "test videos every backbone's runs share. Heads: each on its own run's test split, as the single-"
               "cache report scores them. Intervals: percentile bootstrap over test videos.")])


def _paired(data: Dict[str, Any]) -> S.Section:
    if not data["paired"]:
        return S.Section("Paired comparison", "paired", [S.text("No head was scored on the same test videos "
                                                                "under two backbones, so no gap is tested.")])
    rows = []
    for g in data["paired"]:
        verdict = "A better" if g["low"] > 0 else "B better" if g["high"] < 0 else "cannot tell"
        rows.append([g["head"], g["a"], g["b"], pct(g["diff"]), f"[{pct(g['low'])}, {pct(g['high'])}]",
                     f"{100 * g['p_not_better']:.1f}", g["videos"], verdict])
    return S.Section("Paired comparison", "paired", [
        S.table(["head", "backbone A", "backbone B", "A - B top-1 points", "95% CI", "resamples A not better %",
                 "videos", "verdict"], rows),
        S.text("Paired bootstrap over the test videos both backbones scored (the same videos resampled for both).")])


def write_comparison(out_dir: str, data: Dict[str, Any]) -> List[str]:
    """report.html, report.md and metrics.json of a backbone comparison; returns their paths."""
    sections = [_backbones(data), _table(data), _paired(data)]
    if data["warnings"]:
        sections.append(S.Section("Warnings", "warnings", [S.bullets(data["warnings"], css="warn")]))
    random = [b["label"] for b in data["backbones"] if b["random_weights"]]
    banner = f"{RANDOM_BANNER} ({', '.join(random)})" if random else None
    return write_files(out_dir, TITLE, sections, data, {}, banner)
