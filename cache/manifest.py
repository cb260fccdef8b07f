"""The schema-2 manifest: what a writer holds in memory, and how it is written (atomically) to disk."""
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List

import h5py
import numpy as np

from cache import schema as S

_STR = h5py.string_dtype("utf-8")
COLUMNS = (S.LABELS, S.SPLITS, S.CAPTIONS, S.CONTENT, S.N_DISTINCT, S.DURATION, S.FPS)


@dataclass
class Shard:
    name: str
    rows: int
    crc: List[int]          # crc32 of the committed bytes of .emb, .t, .vidx


@dataclass
class State:
    """Everything the manifest records, in a form cheap to append to."""
    settings: Dict[str, Any]
    classes: List[str] = field(default_factory=list)
    text: Dict[str, np.ndarray] = field(default_factory=dict)         # class name -> [D] float16
    ids: List[str] = field(default_factory=list)
    index: Dict[str, int] = field(default_factory=dict)               # id -> logical row
    cols: Dict[str, list] = field(default_factory=lambda: {k: [] for k in COLUMNS})
    row_map: List[int] = field(default_factory=list)                  # logical row -> physical row
    shards: List[Shard] = field(default_factory=list)
    failed: Dict[str, str] = field(default_factory=dict)

    @property
    def physical_rows(self) -> int:
        return sum(s.rows for s in self.shards)

    def put_video(self, vid: str, physical: int, values: Dict[str, Any]) -> None:
        """Add a video, or point an existing id at its new row (its logical row stays)."""
        row = self.index.get(vid)
        if row is None:
            row = self.index[vid] = len(self.ids)
            self.ids.append(vid)
            self.row_map.append(physical)
            for k in COLUMNS:
                self.cols[k].append(values[k])
        else:
            self.row_map[row] = physical
            for k in COLUMNS:
                self.cols[k][row] = values[k]
        self.failed.pop(vid, None)


def from_reader(r) -> State:
    """The state of an opened schema-2 CacheReader."""
    st = State(dict(r.settings))
    st.classes = list(r.class_names)
    st.text = {n: r.text_emb[i] for i, n in enumerate(r.class_names)}
    st.ids = [str(i) for i in r.ids]
    st.index = {v: i for i, v in enumerate(st.ids)}
    arrays = {S.LABELS: r.labels, S.SPLITS: r.splits, S.CAPTIONS: r.captions, S.CONTENT: r.content,
              S.N_DISTINCT: r.n_distinct, S.DURATION: r.duration, S.FPS: r.fps}
    st.cols = {k: list(arrays[k].tolist()) for k in COLUMNS}
    st.row_map = r.row_map.tolist()
    crc = r.shard_crc if r.shard_crc is not None else np.zeros((len(r.shard_names), 3), np.uint32)
    st.shards = [Shard(n, int(c), [int(x) for x in k]) for n, c, k in zip(r.shard_names, r.shard_rows, crc)]
    st.failed = {i: why for i, why in r.failures}
    return st


def write(path: str, st: State) -> None:
    """Write the manifest to a new file `path` (the caller fsyncs and renames it into place)."""
    D = int(st.settings["dim"])
    with h5py.File(path, "w") as f:
        for key, val in st.settings.items():
            f.attrs[key] = val
        f.attrs["schema_version"] = S.SCHEMA_VERSION
        f.create_dataset(S.SHARD_NAMES, data=np.array([s.name for s in st.shards], dtype=object), dtype=_STR)
        f.create_dataset(S.SHARD_ROWS, data=np.array([s.rows for s in st.shards], np.int64))
        f.create_dataset(S.SHARD_CRC, data=np.array([s.crc for s in st.shards], np.uint32).reshape(-1, 3))
        f.create_dataset(S.ROW, data=np.array(st.row_map, np.int64))
        f.create_dataset(S.IDS, data=np.array(st.ids, dtype=object), dtype=_STR)
        for key in COLUMNS:
            if key in S.VIDEO_STRINGS:
                f.create_dataset(key, data=np.array(st.cols[key], dtype=object), dtype=_STR)
            else:
                f.create_dataset(key, data=np.array(st.cols[key], dtype=S.VIDEO_NUMBERS[key]))
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
