"""Schema-2 caches (raw .emb .t .vidx .num .str shard files next to an HDF5 manifest), written the
way clipvid wrote them before schema 3: the benches' side-by-side runs and the upgrade tests."""
import os
import zlib
from typing import Dict, List, Sequence

import h5py
import numpy as np

from cache.legacy import NUM, RAW, STR_FIELDS as RAW_STRINGS
from cache.pooling import mean_pool

_STR = h5py.string_dtype("utf-8")


class RawShard:
    """One schema-2 shard, appended block by block, with the running crc32 of each file."""

    def __init__(self, folder: str, name: str):
        self.name, self.rows, self.crc = name, 0, [0] * len(RAW)
        self.files = [open(os.path.join(folder, f"{name}.{kind}"), "wb") for kind in RAW]
        self.str_bytes = 0

    def write(self, emb: np.ndarray, t: np.ndarray, cols: Dict[str, Sequence]) -> None:
        """emb [b, N, D], t [b, N], and b values of id, split, caption, content, label, n_distinct, duration,
        fps, and optionally decoder (rows without it are those of shards made before that column)."""
        b = len(emb)
        num = np.zeros(b, NUM)
        for key in NUM.names:
            num[key] = np.asarray(cols[key])
        fields = [cols[k] for k in RAW_STRINGS if k in cols]
        text = "".join("".join(f"{v}\0" for v in row) for row in zip(*fields)).encode("utf-8")
        emb = np.ascontiguousarray(emb, np.float16)
        blobs = [emb.tobytes(), np.ascontiguousarray(t, np.float32).tobytes(),
                 mean_pool(emb).astype(np.float16).tobytes(), num.tobytes(), text]
        for k, (f, blob) in enumerate(zip(self.files, blobs)):
            f.write(blob)
            self.crc[k] = zlib.crc32(blob, self.crc[k])
        self.rows += b
        self.str_bytes += len(text)

    def close(self) -> None:
        for f in self.files:
            f.close()


def write_manifest(path: str, settings: dict, shards: List[RawShard], row_map: np.ndarray,
                   classes: Sequence[str], text: np.ndarray, failures=()) -> None:
    with h5py.File(path, "w") as f:
        f.attrs.update(dict(settings, schema_version=2))
        f.create_dataset("shards/name", data=np.array([s.name for s in shards], dtype=object), dtype=_STR)
        f.create_dataset("shards/rows", data=np.array([s.rows for s in shards], np.int64))
        f.create_dataset("shards/str_bytes", data=np.array([s.str_bytes for s in shards], np.int64))
        f.create_dataset("shards/crc", data=np.array([s.crc for s in shards], np.uint32).reshape(-1, len(RAW)))
        f.create_dataset("videos/row", data=np.asarray(row_map, np.int64))
        f.create_dataset("classes/name", data=np.array(list(classes), dtype=object), dtype=_STR)
        f.create_dataset("classes/text_emb", data=np.asarray(text, np.float16))
        f.create_dataset("failures/id", data=np.array([i for i, _ in failures], dtype=object), dtype=_STR)
        f.create_dataset("failures/reason", data=np.array([r for _, r in failures], dtype=object), dtype=_STR)


def is_current(path: str) -> bool:
    """Whether the cache at `path` has the current layout (a benchmark cache left by an older clipvid
    is rebuilt, not timed as if it were new)."""
    from cache.reader import read_settings
    from cache.schema import SCHEMA_VERSION
    try:
        return int(read_settings(path).get("schema_version", 0)) == SCHEMA_VERSION
    except Exception:   # a damaged leftover: rebuild it
        return False


def schema2_copy(src: str, dst: str, block: int = 512, per_shard: int = 10_240) -> None:
    """The videos of the cache `src`, in its row order, as a new schema-2 cache `dst`."""
    from cache.reader import open_cache
    os.makedirs(dst + ".d")
    shards: List[RawShard] = []
    with open_cache(src) as r:
        for start in range(0, r.num_videos, block):
            if not shards or shards[-1].rows >= per_shard:
                if shards:
                    shards[-1].close()
                shards.append(RawShard(dst + ".d", f"{len(shards) + 1:06d}"))
            rows = np.arange(start, min(start + block, r.num_videos))
            shards[-1].write(r.emb(rows), r.times(rows), {k: v[rows] for k, v in r.columns.items()})
        if shards:
            shards[-1].close()
        write_manifest(dst, r.settings, shards, np.arange(r.num_videos), r.class_names, r.text_emb, r.failures)
