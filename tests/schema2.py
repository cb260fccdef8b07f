"""Write a schema-2 cache (raw .emb .t .vidx .num .str shard files next to a manifest) the way
clipvid wrote them before the cache was HDF5 again: two shards, rows mapped out of order."""
import os
import zlib

import h5py
import numpy as np

from cache.pooling import mean_pool

_STR = h5py.string_dtype("utf-8")
NUM = np.dtype([("label", "<i4"), ("n_distinct", "<i4"), ("duration", "<f4"), ("fps", "<f4")])


def write_schema2(path: str, emb: np.ndarray, labels, classes, text: np.ndarray,
                  failures=(("bad.mp4", "moov atom not found"),)) -> np.ndarray:
    """emb [V, N, D] of videos v0.mp4, v1.mp4, ... in logical order; returns the physical row of each."""
    V, N, D = emb.shape
    rng = np.random.default_rng(5)
    row_map = rng.permutation(V)                       # logical row -> physical row
    physical = np.empty(V, np.int64)
    physical[row_map] = np.arange(V)                   # physical row -> logical row
    t = np.tile(np.linspace(0, 1, N, dtype=np.float32), (V, 1))
    os.makedirs(path + ".d", exist_ok=True)
    cut = V // 2
    names, rows, str_bytes, crcs = [], [], [], []
    for s, (a, b) in enumerate(((0, cut), (cut, V))):
        logical = physical[a:b]
        num = np.zeros(b - a, NUM)
        num["label"], num["n_distinct"] = np.asarray(labels)[logical], N
        num["duration"], num["fps"] = 1.0, 10.0
        text_rows = "".join(f"v{i}.mp4\0{'train' if i % 3 else 'test'}\0caption {i}\0{i}:fp\0" for i in logical)
        blobs = [emb[logical].astype(np.float16).tobytes(), t[logical].tobytes(),
                 mean_pool(emb[logical]).astype(np.float16).tobytes(), num.tobytes(), text_rows.encode()]
        name = f"{s + 1:06d}"
        for kind, blob in zip(("emb", "t", "vidx", "num", "str"), blobs):
            with open(os.path.join(path + ".d", f"{name}.{kind}"), "wb") as f:
                f.write(blob)
        names.append(name)
        rows.append(b - a)
        str_bytes.append(len(blobs[-1]))
        crcs.append([zlib.crc32(blob) for blob in blobs])
    with h5py.File(path, "w") as f:
        f.attrs.update({"schema_version": 2, "clip_model": "some-model", "weights_hash": "w" * 64,
                        "random_weights": False, "dim": D, "frames": N, "sampler": '{"v": 1}',
                        "prompt_templates": '["a photo of {}."]', "source_root": "src"})
        f.create_dataset("shards/name", data=np.array(names, dtype=object), dtype=_STR)
        f.create_dataset("shards/rows", data=np.array(rows, np.int64))
        f.create_dataset("shards/str_bytes", data=np.array(str_bytes, np.int64))
        f.create_dataset("shards/crc", data=np.array(crcs, np.uint32))
        f.create_dataset("videos/row", data=row_map.astype(np.int64))
        f.create_dataset("classes/name", data=np.array(list(classes), dtype=object), dtype=_STR)
        f.create_dataset("classes/text_emb", data=np.asarray(text, np.float16))
        f.create_dataset("failures/id", data=np.array([i for i, _ in failures], dtype=object), dtype=_STR)
        f.create_dataset("failures/reason", data=np.array([r for _, r in failures], dtype=object), dtype=_STR)
    return row_map
