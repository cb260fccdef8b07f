"""A schema-2 cache (raw shard files next to an HDF5 manifest), as clipvid wrote them before the cache
was HDF5 again: two shards (the first made before the decoder column), videos mapped to their rows out
of order."""
import os

import numpy as np

from bench.old_layout import RawShard, write_manifest


def write_schema2(path: str, emb: np.ndarray, labels, classes, text: np.ndarray) -> np.ndarray:
    """emb [V, N, D] of videos v0.mp4, v1.mp4, ... in video order; returns the physical row of each."""
    V, N, D = emb.shape
    row_map = np.random.default_rng(5).permutation(V)      # video -> physical row
    video = np.argsort(row_map)                             # physical row -> video
    os.makedirs(path + ".d")
    shards = []
    for s, part in enumerate(np.array_split(video, 2)):
        shard = RawShard(path + ".d", f"{s + 1:06d}")
        shard.write(emb[part], np.tile(np.linspace(0, 1, N, dtype=np.float32), (len(part), 1)),
                    {"id": [f"v{i}.mp4" for i in part], "split": ["train" if i % 3 else "test" for i in part],
                     "caption": [f"caption {i}" for i in part], "content": [f"{i}:fp" for i in part],
                     "label": np.asarray(labels)[part], "n_distinct": [N] * len(part), "duration": [1.0] * len(part),
                     "fps": [10.0] * len(part), **({"decoder": ["pyav"] * len(part)} if s else {})})
        shard.close()
        shards.append(shard)
    settings = {"clip_model": "some-model", "weights_hash": "w" * 64, "random_weights": False, "dim": D,
                "frames": N, "sampler": '{"v": 1}', "prompt_templates": '["a photo of {}."]', "source_root": "src"}
    write_manifest(path, settings, shards, row_map, classes, text, [("bad.mp4", "moov atom not found")])
    return row_map
