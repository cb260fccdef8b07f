"""The manifest and the shards' per-video files: what a writer holds in memory, and how it is written
(each file whole, to a temporary name, then renamed into place)."""
import os
import zlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import h5py
import numpy as np

from cache import layout as L
from cache import schema as S

_STR = h5py.string_dtype("utf-8")


@dataclass
class Shard:
    name: str
    rows: int                                                # committed rows
    capacity: int = 0                                        # rows its frame file holds
    crc: List[int] = field(default_factory=lambda: [0] * len(L.CRC_PARTS))  # of the committed bytes
    videos: Optional[Dict[str, list]] = None                 # its per-video columns, while a writer adds rows
    dirty: bool = False                                      # videos changed since its file was written


@dataclass
class State:
    """What the manifest records (per-video columns live in the shards), plus the writer's index."""
    settings: Dict[str, Any]
    classes: List[str] = field(default_factory=list)
    text: Dict[str, np.ndarray] = field(default_factory=dict)         # class name -> [D] float16
    ids: List[str] = field(default_factory=list)
    index: Dict[str, int] = field(default_factory=dict)               # id -> logical row
    content: Dict[int, str] = field(default_factory=dict)             # logical row -> fingerprint, rows put since open
    committed_content: Optional[List[str]] = None                     # per logical row at open, once read
    row_map: List[int] = field(default_factory=list)                  # logical row -> physical row
    shards: List[Shard] = field(default_factory=list)
    failed: Dict[str, str] = field(default_factory=dict)

    @property
    def physical_rows(self) -> int:
        return sum(s.rows for s in self.shards)

    def put_video(self, vid: str, physical: int, content: str) -> None:
        """Add a video, or point an existing id at its new row (its logical row stays)."""
        row = self.index.get(vid)
        if row is None:
            self.index[vid] = len(self.ids)
            self.ids.append(vid)
            self.row_map.append(physical)
        else:
            self.row_map[row] = physical
        self.content[self.index[vid]] = content
        self.failed.pop(vid, None)


def from_reader(r) -> State:
    """The state of an opened CacheReader of the current layout."""
    st = State(dict(r.settings))
    st.classes = list(r.class_names)
    st.text = {n: r.text_emb[i] for i, n in enumerate(r.class_names)}
    st.ids = r.ids.tolist()
    st.index = dict(zip(st.ids, range(len(st.ids))))
    st.committed_content = None if r.content is None else r.content.tolist()
    st.row_map = r.row_map.tolist()
    st.shards = [Shard(n, int(c), int(cap), [int(x) for x in k])
                 for n, c, cap, k in zip(r.shard_names, r.shard_rows, r.shard_capacity, r.shard_crc)]
    st.failed = {i: why for i, why in r.failures}
    return st


def strings(ds, rows: Optional[int] = None) -> np.ndarray:
    """The first `rows` (default all) values of a UTF-8 string dataset, as an object array of str."""
    raw = ds[()] if rows is None else ds[:rows]
    out = np.empty(len(raw), dtype=object)
    if len(raw):
        # One decode for the whole column (h5py's asstr decodes value by value, most of a large
        # cache's open); HDF5 strings hold no NUL, so the joined text splits back exactly.
        out[:] = b"\0".join(raw.tolist()).decode("utf-8").split("\0")
    return out


def empty_columns() -> Dict[str, list]:
    return {name: [] for name in S.VIDEO_COLUMNS}


def read_videos(file: str, rows: int, names: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
    """The first `rows` rows of every per-video column (or of those `names`) of a shard's videos file
    (a column the file lacks reads as its default); ValueError when a column is short."""
    out: Dict[str, np.ndarray] = {}
    L.must_exist(file)
    with h5py.File(file, "r") as f:
        for name, (kind, default) in S.VIDEO_COLUMNS.items():
            if names is not None and name not in names:
                continue
            if name not in f:
                out[name] = np.full(rows, default, dtype=object if kind == "str" else kind)
                continue
            ds = f[name]
            if ds.shape[0] < rows:
                raise ValueError(f"{file}: {name} has {ds.shape[0]} rows, the manifest commits {rows}")
            if kind == "str":
                out[name] = strings(ds, rows)
            else:
                out[name] = ds[:rows].astype(kind)
    return out


def columns_crc(columns: Dict[str, Sequence], rows: int) -> int:
    """crc32 of the first `rows` values of every per-video column: what a shard's videos file commits.
    Columns only grow, so the file a killed commit rewrote (more rows, same prefix) still matches the
    manifest that was not swapped, and a plain h5py reader holding the old manifest reads the same rows."""
    crc = 0
    for name, (kind, _) in S.VIDEO_COLUMNS.items():
        if name not in columns:   # a file written before the column was added
            continue
        values = columns[name][:rows]
        if kind == "str":
            data = b"".join(len(b).to_bytes(4, "little") + b
                            for b in (str(v).encode("utf-8", "surrogateescape") for v in values))
        else:
            data = np.asarray(values, dtype=kind).reshape(-1).tobytes()
        crc = zlib.crc32(data, crc)
    return crc


def write_videos(file: str, columns: Dict[str, list]) -> int:
    """A shard's videos file, whole: one (R,) dataset per column; durable and renamed into place.
    Returns the crc32 of its values (columns_crc)."""
    tmp = f"{file}.tmp-{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as f:
            for name, (kind, _) in S.VIDEO_COLUMNS.items():
                values = columns[name]
                if kind == "str":
                    f.create_dataset(name, data=np.array(values, dtype=object), dtype=_STR)
                else:
                    f.create_dataset(name, data=np.asarray(values, dtype=kind).reshape(-1))
        replace(tmp, file, folder_too=False)   # the commit syncs the folder once
        return columns_crc(columns, len(columns["id"]))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _virtual(f: h5py.File, key: str, shape: tuple, dtype, sources: list, fill=None) -> None:
    """Dataset `key` of `shape`: (logical first, count, file, dataset, file shape, local first) pieces,
    or an ordinary empty dataset when there are none (a cache with no videos yet). `fill` is what a
    source file without that dataset reads as (a column added after the shard was written)."""
    if not sources:
        f.create_dataset(key, shape=shape, dtype=dtype)
        return
    layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
    for logical, count, file, name, file_shape, local in sources:
        layout[logical:logical + count] = h5py.VirtualSource(file, name, shape=file_shape)[local:local + count]
    f.create_virtual_dataset(key, layout, fillvalue=fill)


def write(tmp: str, st: State, cache_path: str) -> None:
    """Write the manifest of `cache_path` to the new file `tmp` (the caller renames it into place).
    Its size grows with the number of mapped runs (one per shard without replaced videos), not V."""
    N, D = int(st.settings["frames"]), int(st.settings["dim"])
    folder = os.path.basename(L.sidecar(cache_path))   # sources are named relative to the manifest
    starts = np.concatenate(([0], np.cumsum([s.rows for s in st.shards], dtype=np.int64)))
    table = L.mapping_runs(np.asarray(st.row_map, np.int64), starts)
    pieces = []   # (logical first, count, shard, local first)
    for logical, physical, count in table.tolist():
        s = int(np.searchsorted(starts, physical, side="right")) - 1
        pieces.append((logical, count, st.shards[s], physical - int(starts[s])))
    V = len(st.row_map)
    with h5py.File(tmp, "w") as f:
        for key, val in st.settings.items():
            f.attrs[key] = val
        f.attrs["schema_version"] = S.SCHEMA_VERSION
        f.create_dataset(S.SHARD_NAMES, data=np.array([s.name for s in st.shards], dtype=object), dtype=_STR)
        f.create_dataset(S.SHARD_ROWS, data=np.array([s.rows for s in st.shards], np.int64))
        f.create_dataset(S.SHARD_CRC, data=np.array([s.crc for s in st.shards], np.uint32).reshape(-1, len(L.CRC_PARTS)))
        f.create_dataset(S.RUNS, data=table)
        for key, kind in ((S.EMB, "emb"), (S.TIMES, "t")):
            shape, dtype = L.row_shape(kind, N, D)
            _virtual(f, key, (V,) + shape, dtype, [
                (lg, c, f"{folder}/{L.frames_name(sh.name)}", kind, (sh.capacity,) + shape, lo)
                for lg, c, sh, lo in pieces])
        for name, (kind, default) in S.VIDEO_COLUMNS.items():
            _virtual(f, f"videos/{name}", (V,), _STR if kind == "str" else kind, [
                (lg, c, f"{folder}/{L.videos_name(sh.name)}", name, (sh.rows,), lo) for lg, c, sh, lo in pieces],
                None if kind == "str" else default)
        f.create_dataset(S.CLASS_NAMES, data=np.array(st.classes, dtype=object), dtype=_STR)
        text = np.stack([st.text[n] for n in st.classes]) if st.classes else np.zeros((0, D), np.float16)
        f.create_dataset(S.TEXT_EMB, data=text.astype(np.float16))
        f.create_dataset(S.FAIL_IDS, data=np.array(list(st.failed), dtype=object), dtype=_STR)
        f.create_dataset(S.FAIL_REASONS, data=np.array(list(st.failed.values()), dtype=object), dtype=_STR)


def mapped_folder(path: str) -> Optional[str]:
    """The folder the manifest's virtual datasets name for their shards (None when nothing is mapped);
    it differs from the cache's own after the file and its folder were renamed together."""
    with h5py.File(path, "r") as f:
        ds = f.get(S.EMB)
        if ds is None or not ds.is_virtual or not ds.virtual_sources():
            return None
        return ds.virtual_sources()[0].file_name.rsplit("/", 1)[0]


def sync_folder(folder: str) -> None:
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def replace(tmp: str, path: str, folder_too: bool = True) -> None:
    """Make the new file durable, then swap it in atomically (and make the rename durable)."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if folder_too:
        sync_folder(os.path.dirname(os.path.abspath(path)))
