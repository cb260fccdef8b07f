"""The schema-2 manifest: what a writer holds in memory, and how it is written (atomically) to disk."""
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List

import h5py
import numpy as np

from cache import schema as S

_STR = h5py.string_dtype("utf-8")


@dataclass
class Shard:
    name: str
    rows: int
    str_bytes: int = 0                                     # committed bytes of the .str file
    crc: List[int] = field(default_factory=lambda: [0] * 5)  # crc32 of the committed bytes of each file


@dataclass
class State:
    """What the manifest records (per-video metadata lives in the shards), plus the writer's index."""
    settings: Dict[str, Any]
    classes: List[str] = field(default_factory=list)
    text: Dict[str, np.ndarray] = field(default_factory=dict)         # class name -> [D] float16
    ids: List[str] = field(default_factory=list)
    index: Dict[str, int] = field(default_factory=dict)               # id -> logical row
    content: List[str] = field(default_factory=list)                  # per logical row
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
            self.content.append(content)
        else:
            self.row_map[row] = physical
            self.content[row] = content
        self.failed.pop(vid, None)


def from_reader(r) -> State:
    """The state of an opened schema-2 CacheReader."""
    st = State(dict(r.settings))
    st.classes = list(r.class_names)
    st.text = {n: r.text_emb[i] for i, n in enumerate(r.class_names)}
    st.ids = r.ids.tolist()
    st.index = dict(zip(st.ids, range(len(st.ids))))
    st.content = r.content.tolist()
    st.row_map = r.row_map.tolist()
    st.shards = [Shard(n, int(c), int(b), [int(x) for x in k])
                 for n, c, b, k in zip(r.shard_names, r.shard_rows, r.shard_str_bytes, r.shard_crc)]
    st.failed = {i: why for i, why in r.failures}
    return st


def write(path: str, st: State) -> None:
    """Write the manifest to a new file `path` (the caller fsyncs and renames it into place). Its
    only per-video part is the row map (8 bytes a video); ids and the rest are in the shards."""
    D = int(st.settings["dim"])
    with h5py.File(path, "w") as f:
        for key, val in st.settings.items():
            f.attrs[key] = val
        f.attrs["schema_version"] = S.SCHEMA_VERSION
        f.create_dataset(S.SHARD_NAMES, data=np.array([s.name for s in st.shards], dtype=object), dtype=_STR)
        f.create_dataset(S.SHARD_ROWS, data=np.array([s.rows for s in st.shards], np.int64))
        f.create_dataset(S.SHARD_STR, data=np.array([s.str_bytes for s in st.shards], np.int64))
        f.create_dataset(S.SHARD_CRC, data=np.array([s.crc for s in st.shards], np.uint32).reshape(-1, 5))
        f.create_dataset(S.ROW, data=np.array(st.row_map, np.int64))
        f.create_dataset(S.CLASS_NAMES, data=np.array(st.classes, dtype=object), dtype=_STR)
        text = np.stack([st.text[n] for n in st.classes]) if st.classes else np.zeros((0, D), np.float16)
        f.create_dataset(S.TEXT_EMB, data=text.astype(np.float16))
        f.create_dataset(S.FAIL_IDS, data=np.array(list(st.failed), dtype=object), dtype=_STR)
        f.create_dataset(S.FAIL_REASONS, data=np.array(list(st.failed.values()), dtype=object), dtype=_STR)


def replace(tmp: str, path: str) -> None:
    """Make the new manifest durable, then swap it in atomically."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
