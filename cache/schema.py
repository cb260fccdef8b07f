"""Names, dtypes and settings of the cache format (DESIGN.md, Cache)."""
import json
from typing import Any, Dict, List, Optional

SCHEMA_VERSION = 3   # 3: HDF5 shard files mapped into the manifest by virtual datasets (cache.layout)
# 1: every array inside the one file; 2: raw shard files (.emb .t ...) only clipvid read (cache.legacy)

EMB = "frames/emb"            # (V, N, D) float16; virtual: the `emb` datasets of the shards' frame files
TIMES = "frames/t"            # (V, N) float32; virtual, as EMB
CONTENT = "videos/content"    # content fingerprint of the source file (extract.identity)
DECODER = "videos/decoder"    # which path sampled the video: 'pyav' or 'ffmpeg' ('' before it was recorded)
SHARD_NAMES = "shards/name"   # (S,) utf-8 shard number in the sidecar folder
SHARD_ROWS = "shards/rows"    # (S,) int64 committed rows per shard
SHARD_CRC = "shards/crc"      # (S, 4) uint32 crc32 of the committed emb, t, vidx bytes and videos values
RUNS = "shards/runs"          # (M, 3) int64 logical first row, physical first row, count: the virtual mapping
IDS = "videos/id"             # (V,) utf-8
LABELS = "videos/label"       # (V,) int32, -1 unlabelled
SPLITS = "videos/split"       # (V,) utf-8, "" when unknown
CAPTIONS = "videos/caption"   # (V,) utf-8, "" when none
N_DISTINCT = "videos/n_distinct"  # (V,) int32
DURATION = "videos/duration"  # (V,) float32 seconds
FPS = "videos/fps"            # (V,) float32
CLASS_NAMES = "classes/name"  # (C,) utf-8
TEXT_EMB = "classes/text_emb"  # (C, D) float16
FAIL_IDS = "failures/id"      # (F,) utf-8
FAIL_REASONS = "failures/reason"  # (F,) utf-8

# Per-video columns, each a (V,) dataset /videos/<name>: dtype ("str" is UTF-8 text) and the value a
# video (or an older cache) without it gets. A new optional column is one line here.
VIDEO_COLUMNS = {
    "id": ("str", ""), "label": ("int32", -1), "split": ("str", ""), "caption": ("str", ""),
    "content": ("str", ""), "n_distinct": ("int32", 0), "duration": ("float32", 0.0), "fps": ("float32", 0.0),
    "decoder": ("str", ""),
}

def column_values(values: Dict[str, Any]) -> Dict[str, Any]:
    """Every per-video column of one video as plain JSON-able values (the defaults where not given)."""
    import numpy as np
    unknown = set(values) - set(VIDEO_COLUMNS)
    if unknown:
        raise ValueError(f"no per-video column {sorted(unknown)[0]!r} in the cache schema")
    out = {name: values.get(name, default) for name, (_, default) in VIDEO_COLUMNS.items()}
    return {name: str(v) if VIDEO_COLUMNS[name][0] == "str" else np.dtype(VIDEO_COLUMNS[name][0]).type(v).item()
            for name, v in out.items()}


# Root attributes. Those in MATCH_KEYS must agree before a writer appends; of LATER_KEYS (added to
# the format later), only when the existing cache has them. The embedding space (fingerprint) is
# MATCH_KEYS and the backbone's preprocessing: the templates shape the class text only.
ATTR_KEYS = ("schema_version", "clip_model", "weights_hash", "random_weights",
             "dim", "frames", "sampler", "prompt_templates", "source_root", "preprocess")
MATCH_KEYS = ("weights_hash", "dim", "frames", "sampler")
LATER_KEYS = ("preprocess", "prompt_templates")


def make_settings(clip_model: str, weights_hash: str, random_weights: bool, dim: int,
                  frames: int, sampler: Dict[str, Any], prompt_templates: List[str],
                  source_root: str = "", preprocess: str = "") -> Dict[str, Any]:
    """The root attributes of a cache, as plain JSON-able values."""
    return {
        "schema_version": SCHEMA_VERSION,
        "clip_model": clip_model,
        "weights_hash": weights_hash,
        "random_weights": bool(random_weights),
        "dim": int(dim),
        "frames": int(frames),
        "sampler": json.dumps(sampler, sort_keys=True),
        "prompt_templates": json.dumps(list(prompt_templates)),
        "source_root": source_root,  # absolute folder ids are relative to; checked by extract, not here
        # The backbone's preprocessing (JSON of extract.backbones.Preprocess: size, crop or squash,
        # interpolation, mean, std); "" when not recorded (synthetic caches).
        "preprocess": preprocess,
    }


def settings_mismatch(old: Dict[str, Any], new: Dict[str, Any]) -> Optional[str]:
    """Say which setting differs between an existing cache and a new run, or None."""
    for key in MATCH_KEYS + LATER_KEYS:
        a, b = old.get(key), new.get(key)
        if key in LATER_KEYS and not a:
            continue
        if str(a) != str(b):
            if key == "weights_hash":
                return (f"it was made with CLIP model {old.get('clip_model')!r} "
                        f"(weights {str(a)[:12]}), this run uses {new.get('clip_model')!r} (weights {str(b)[:12]})")
            return f"it was made with {key}={a}, this run asks for {key}={b}"
    return None


def fingerprint(settings: Dict[str, Any]) -> str:
    """A short id of the embedding space a cache lives in (model weights, N, sampler)."""
    import hashlib
    key = json.dumps({k: str(settings.get(k)) for k in MATCH_KEYS}, sort_keys=True)
    if settings.get("preprocess"):   # caches made before it was recorded keep their fingerprint
        key += str(settings["preprocess"])
    return hashlib.sha256(key.encode()).hexdigest()[:16]
