"""Append-only journal of finished videos: survives SIGKILL, torn tails are dropped."""
import json
import os
import struct
import zlib
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import numpy as np

MAGIC = b"CVJ1"
# magic, header length, payload length, crc32 of header+payload
_HEAD = struct.Struct("<4sIQI")


@dataclass
class Record:
    """One journal entry: a cached video (with arrays) or a failure (reason only)."""
    meta: dict                      # id, kind, label, split, caption, n_distinct, duration, fps, reason
    emb: Optional[np.ndarray] = None  # [N, D] float16
    t: Optional[np.ndarray] = None    # [N] float32


def encode(rec: Record) -> bytes:
    """Serialise a record; JSON and raw arrays only, so reading it executes nothing."""
    meta = dict(rec.meta)
    payload = b""
    if rec.emb is not None:
        emb = np.ascontiguousarray(rec.emb, dtype=np.float16)
        t = np.ascontiguousarray(rec.t, dtype=np.float32)
        meta["shape"] = list(emb.shape)
        payload = emb.tobytes() + t.tobytes()
    header = json.dumps(meta, ensure_ascii=False).encode("utf-8")
    crc = zlib.crc32(header + payload)
    return _HEAD.pack(MAGIC, len(header), len(payload), crc) + header + payload


def _decode(header: bytes, payload: bytes) -> Record:
    meta = json.loads(header.decode("utf-8"))
    if not payload:
        return Record(meta)
    n, d = meta["shape"]
    emb = np.frombuffer(payload[: n * d * 2], dtype=np.float16).reshape(n, d)
    t = np.frombuffer(payload[n * d * 2:], dtype=np.float32)
    return Record(meta, emb, t)


def scan(path: str, load_arrays: bool = True) -> Iterator[Tuple[int, Record]]:
    """Yield (end offset, record) for every whole record; stop at the first torn or bad one."""
    if not os.path.exists(path):
        return
    with open(path, "rb") as f:
        offset = 0
        while True:
            head = f.read(_HEAD.size)
            if len(head) < _HEAD.size:
                return
            magic, hlen, plen, crc = _HEAD.unpack(head)
            if magic != MAGIC:
                return
            body = f.read(hlen + plen)
            if len(body) < hlen + plen or zlib.crc32(body) != crc:
                return
            offset += _HEAD.size + hlen + plen
            header, payload = body[:hlen], body[hlen:]
            yield offset, _decode(header, payload if load_arrays else b"")


class Journal:
    """Appends records to `path`; on open, cuts off a torn tail left by a killed writer."""

    def __init__(self, path: str):
        self.path = path
        good = 0
        self.count = 0
        for good, _ in scan(path, load_arrays=False):
            self.count += 1
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        os.ftruncate(self._fd, good)
        os.lseek(self._fd, good, os.SEEK_SET)

    def append(self, rec: Record) -> None:
        data = encode(rec)
        view = memoryview(data)
        while view:  # a regular-file write may be short; finish it
            n = os.write(self._fd, view)
            view = view[n:]
        self.count += 1

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
