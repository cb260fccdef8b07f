"""Older cache layouts, read in place until their first append migrates them (cache.writer):
schema 1 (every array inside the one HDF5 file) and schema 2 (raw .emb .t .vidx .num .str shard
files next to a manifest). Also schema 1's video index, built once on request, and its journal."""
import hashlib
import os
import sys
from typing import TYPE_CHECKING, List

import numpy as np

from cache import layout as L
from cache import schema as S
from cache.pooling import mean_pool
from cache.shards import file_crc
from clipvid.progress import progress as progress_display

if TYPE_CHECKING:
    from cache.reader import CacheReader

_BLOCK = 1024   # videos per streamed read while building
# Schema 2's raw files: fixed-size records, and NUL-ended UTF-8 strings per row.
NUM = np.dtype([("label", "<i4"), ("n_distinct", "<i4"), ("duration", "<f4"), ("fps", "<f4")])
RAW = ("emb", "t", "vidx", "num", "str")
STR_FIELDS = ("id", "split", "caption", "content", "decoder")   # rows of shards made before the decoder column hold 4


class H5Rows:
    """Schema 1's frames: rows of an HDF5 dataset inside the file (the ShardRows interface)."""

    def __init__(self, ds):
        self.ds, self.shape, self.dtype = ds, ds.shape[1:], ds.dtype

    def read(self, physical: np.ndarray) -> np.ndarray:
        if len(physical) and physical[-1] - physical[0] + 1 == len(physical):
            return self.ds[int(physical[0]):int(physical[-1]) + 1]          # one contiguous slice
        return self.ds[physical] if len(physical) else np.empty((0,) + self.shape, self.dtype)

    def close(self) -> None:
        pass


def load(r: "CacheReader", f) -> None:
    """Fill a CacheReader from an older layout: its columns, row map and frame rows."""
    from cache.manifest import strings
    if r.schema_version < 2:
        r._require(S.EMB, S.TIMES, S.IDS, S.LABELS)
        r._load_shared()
        n = len(f[S.IDS])
        cols = {}
        for name, (kind, default) in S.VIDEO_COLUMNS.items():
            key = f"videos/{name}"
            if key not in f:
                cols[name] = np.full(n, default, dtype=object if kind == "str" else kind)
            else:
                cols[name] = strings(f[key]) if kind == "str" else f[key][()].astype(kind)
        r.set_columns(cols)
        r.row_map = np.arange(n, dtype=np.int64)
        r._shards = {"emb": H5Rows(f[S.EMB]), "t": H5Rows(f[S.TIMES])}
        if f[S.EMB].shape[0] != n:
            from clipvid.errors import CacheError
            raise CacheError(r.path, f"damaged cache: {f[S.EMB].shape[0]} embedding rows for {n} ids")
        return
    r._require("shards/name", "shards/rows", "shards/str_bytes", "shards/crc", "videos/row")
    r._load_shared()
    r.shard_names = [str(x) for x in strings(f["shards/name"])]
    r.shard_rows = f["shards/rows"][()].astype(np.int64)
    r.shard_str_bytes = f["shards/str_bytes"][()].astype(np.int64)
    r.shard_crc = f["shards/crc"][()].astype(np.uint32)
    r.row_map = f["videos/row"][()].astype(np.int64)
    f.close()
    r._f = None
    raw = lambda name, kind: os.path.join(L.sidecar(r.path), f"{name}.{kind}")   # noqa: E731
    for kind in L.KINDS:
        shape, dtype = L.row_shape(kind, r.frames, r.dim)
        r._shards[kind] = L.ShardRows([raw(s, kind) for s in r.shard_names], r.shard_rows, shape, dtype)
    num = L.ShardRows([raw(s, "num") for s in r.shard_names], r.shard_rows, (), NUM)
    try:
        rec = num.read(np.arange(num.total, dtype=np.int64))
    finally:
        num.close()
    text: List[List[str]] = [[] for _ in STR_FIELDS]
    for name, rows, nbytes in zip(r.shard_names, r.shard_rows, r.shard_str_bytes):
        with open(raw(name, "str"), "rb") as fh:
            parts = fh.read(int(nbytes)).decode("utf-8").split("\0")
        width = next((w for w in (len(STR_FIELDS), len(STR_FIELDS) - 1) if len(parts) == rows * w + 1), 0)
        if not width or parts[-1]:
            raise ValueError(f"{fh.name}: {len(parts) - 1} strings for {rows} rows")
        for k, col in enumerate(text):
            col.extend(parts[k:-1:width] if k < width else [""] * int(rows))
    cols = {name: np.array(col, dtype=object)[r.row_map] for name, col in zip(STR_FIELDS, text)}
    cols.update({name: rec[name][r.row_map] for name in NUM.names})
    r.set_columns(cols)


def upgrade(r: "CacheReader", settings: dict, per_shard: int, progress: bool):
    """The rows of an older cache copied, in video order, into fresh shards of the current layout
    next to it; returns the manifest state that maps them (the caller commits it over the old file)."""
    from cache.manifest import State
    from cache.shards import copy_rows
    print(f"{r.path}: upgrading a schema-{r.schema_version} cache to schema {S.SCHEMA_VERSION} "
          f"(plain HDF5; a one-time copy of {r.num_videos} videos)", file=sys.stderr, flush=True)
    st = State(dict(settings), classes=list(r.class_names), ids=r.ids.tolist(),
               committed_content=r.content.tolist(), row_map=list(range(r.num_videos)),
               failed={i: why for i, why in r.failures})
    st.text = {n: r.text_emb[i] for i, n in enumerate(r.class_names)}
    st.index = dict(zip(st.ids, range(len(st.ids))))
    st.shards = copy_rows(r, r.path, 1, per_shard, "upgrading", progress)
    return st


def problems(r: "CacheReader") -> List[str]:
    """validate's checks of an older layout's arrays (schema 2: every committed byte's checksum)."""
    out: List[str] = []
    if r.schema_version < 2:
        ds = r._shards["emb"].ds
        if ds.shape != (r.num_videos, r.frames, r.dim) or ds.dtype != np.float16:
            out.append(f"{S.EMB} is {ds.dtype} {ds.shape}, expected float16 {(r.num_videos, r.frames, r.dim)}")
        if r._shards["t"].ds.shape != (r.num_videos, r.frames):
            out.append(f"{S.TIMES} has shape {r._shards['t'].ds.shape}, expected {(r.num_videos, r.frames)}")
        return out
    if len(np.unique(r.row_map)) != len(r.row_map):
        out.append("videos/row points two videos at the same shard row")
    sizes = [L.row_bytes(k, r.frames, r.dim) for k in L.KINDS] + [NUM.itemsize]
    for name, rows, nstr, crcs in zip(r.shard_names, r.shard_rows, r.shard_str_bytes, r.shard_crc):
        for kind, size, want in zip(RAW, [int(rows) * b for b in sizes] + [int(nstr)], crcs):
            f = os.path.join(L.sidecar(r.path), f"{name}.{kind}")
            if file_crc(f, size) != int(want):
                out.append(f"{f}: checksum of its {rows} committed rows does not match (damaged shard)")
    return out


def leftovers(path: str) -> List[str]:
    """Files of older layouts next to a migrated cache: schema 2's raw shards, schema 1's video
    index, journal and lock (a writer removes them once the new manifest is in place)."""
    folder = L.sidecar(path)
    out = [p for p in (path + ".journal", path + ".lock") if os.path.exists(p)]
    if os.path.isdir(folder):
        out += [os.path.join(folder, n) for n in os.listdir(folder)
                if n.startswith("index-") or n.rsplit(".", 1)[-1] in RAW]
    return out


def index_key(path: str, videos: int) -> str:
    """Changes whenever the file is replaced or rewritten (the old writer always replaced it)."""
    st = os.stat(path)
    raw = f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{videos}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def pooled_blocks(reader: "CacheReader", progress: bool, what: str):
    """Yield (start, [b, D] float16 unit mean-pooled rows) over the whole cache, with the one progress display."""
    with progress_display(total=reader.num_videos, desc=what, unit="video", quiet=not progress) as shown:
        for start, block in reader.iter_emb(_BLOCK):   # [b, N, D]
            yield start, mean_pool(block).astype(np.float16)
            shown.update(len(block))


def legacy_index(reader: "CacheReader", progress: bool = True) -> L.RowView:
    """[V, D] float16 video index of a schema-1 cache: memory-mapped from the sidecar folder, built
    in one streamed pass the first time (in memory only, when the folder cannot be written)."""
    V, D = reader.num_videos, reader.dim
    folder = L.sidecar(reader.path)
    target = os.path.join(folder, f"index-{index_key(reader.path, V)}.vidx")
    if V == 0:
        return L.RowView([], (0, D), np.float16)
    if os.path.exists(target) and os.path.getsize(target) == V * D * 2:
        return L.RowView([(0, np.memmap(target, np.float16, "r", shape=(V, D)))], (V, D), np.float16)
    tmp = f"{target}.tmp-{os.getpid()}"
    try:
        os.makedirs(folder, exist_ok=True)
        with open(tmp, "wb") as f:
            for _, pooled in pooled_blocks(reader, progress, f"{reader.path}: building the video index"):
                f.write(pooled.tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        for name in os.listdir(folder):   # indexes of earlier versions of the file
            if name.startswith("index-") and os.path.join(folder, name) != target:
                os.unlink(os.path.join(folder, name))
    except OSError:
        if os.path.exists(tmp):
            os.unlink(tmp)
        out = np.empty((V, D), np.float16)
        for start, pooled in pooled_blocks(reader, progress, f"{reader.path}: pooling (read-only folder)"):
            out[start:start + len(pooled)] = pooled
        return L.RowView([(0, out)], (V, D), np.float16)
    return L.RowView([(0, np.memmap(target, np.float16, "r", shape=(V, D)))], (V, D), np.float16)


def import_old_journal(path: str, writer) -> None:
    """Videos a killed schema-1 writer left in `path.journal` (with their frames) join the cache."""
    from cache.journal import scan
    for _, rec in scan(path + ".journal"):
        m = rec.meta
        if m.get("kind") == "video" and m["id"] not in writer.done_ids:
            label = m.get("label") if m.get("label") in writer.class_names else None
            writer.add_video(m["id"], rec.emb, rec.t, label, m.get("split", ""), m.get("caption", ""),
                             m.get("n_distinct", 0), m.get("duration", 0.0), m.get("fps", 0.0))
        elif m.get("kind") == "failure" and m["id"] not in writer.done_ids:
            writer.add_failure(m["id"], m["reason"])
    writer.commit()
