"""The single writer: journal each result at once, merge into the HDF5 file by atomic replace."""
import errno
import fcntl
import os
from typing import Any, Dict, List, Optional, Sequence

import h5py
import numpy as np

from cache import schema as S
from cache.errors import CacheError
from cache.journal import Journal, Record, scan

_STR = h5py.string_dtype("utf-8")
_COPY_BLOCK = 256  # videos per block when copying the old file into the new one


class CacheWriter:
    """Owns one cache file: lock, journal, and atomic commits. Only one process may hold it."""

    def __init__(self, path: str, settings: Dict[str, Any]):
        self.path = path
        self.settings = dict(settings)
        self.journal_path = path + ".journal"
        self._lock_fd = self._lock()
        self._classes: List[str] = []
        self._text: Dict[str, np.ndarray] = {}
        self.done_ids: set = set()
        self.failed: Dict[str, str] = {}
        self._main_count = 0
        self._read_existing()
        self.journal = Journal(self.journal_path)
        if self.journal.count == 0:
            try:
                self._journal(Record({"kind": "settings", "settings": self.settings}))
            except CacheError:
                self.abandon()
                raise
        self._settings_records = 1

    # -- opening -----------------------------------------------------------------
    def _lock(self) -> int:
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise CacheError(self.path, f"folder {folder} does not exist")
        if not os.access(folder, os.W_OK):
            raise CacheError(self.path, f"folder {folder} is not writable")
        fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise CacheError(self.path, "another process is writing this cache (only one writer at a time)")
        return fd

    def _check(self, old: Dict[str, Any], where: str) -> None:
        if int(old.get("schema_version", S.SCHEMA_VERSION)) > S.SCHEMA_VERSION:
            raise CacheError(self.path, f"{where} has schema version {old.get('schema_version')}, "
                                        f"newer than this clipvid ({S.SCHEMA_VERSION})")
        why = S.settings_mismatch(old, self.settings)
        if why:
            raise CacheError(self.path, f"refusing to append: {why}; use another --out file")

    def _read_existing(self) -> None:
        from cache.reader import open_cache  # a damaged file raises CacheError here
        if os.path.exists(self.path):
            with open_cache(self.path) as r:
                self._check(r.settings, "the cache")
                self._classes = list(r.class_names)
                self._text = {n: r.text_emb[i] for i, n in enumerate(r.class_names)}
                self.done_ids = set(r.ids)
                self.failed = {i: why for i, why in r.failures}
                self._main_count = r.num_videos
        for _, rec in scan(self.journal_path, load_arrays=False):
            kind = rec.meta.get("kind")
            if kind == "settings":
                self._check(rec.meta["settings"], f"the journal {self.journal_path}")
            elif kind == "video":
                self.done_ids.add(rec.meta["id"])
                self.failed.pop(rec.meta["id"], None)
            elif kind == "failure" and rec.meta["id"] not in self.done_ids:
                self.failed[rec.meta["id"]] = rec.meta["reason"]

    # -- adding ------------------------------------------------------------------
    def set_classes(self, names: Sequence[str], text_emb: np.ndarray) -> None:
        """Register class names with their text embeddings [C, D]; old indices never move."""
        for name, vec in zip(names, text_emb):
            if name not in self._text:
                self._classes.append(name)
            self._text[name] = np.asarray(vec, np.float16)

    @property
    def class_names(self) -> List[str]:
        return list(self._classes)

    def add_video(self, vid: str, emb: np.ndarray, t: np.ndarray, label: Optional[str] = None,
                  split: str = "", caption: str = "", n_distinct: int = 0,
                  duration: float = 0.0, fps: float = 0.0) -> None:
        """Journal one finished video: emb [N, D], t [N]; label is a class name or None."""
        if label is not None and label not in self._text:
            raise ValueError(f"label {label!r} was not registered with set_classes")
        meta = {"kind": "video", "id": vid, "label": label, "split": split or "", "caption": caption or "",
                "n_distinct": int(n_distinct), "duration": float(duration), "fps": float(fps)}
        self._append(Record(meta, emb, t))
        self.done_ids.add(vid)
        self.failed.pop(vid, None)

    def add_failure(self, vid: str, reason: str) -> None:
        """Journal a video that could not be used, with a one-line reason."""
        reason = " ".join(str(reason).split()) or "unknown error"
        self._append(Record({"kind": "failure", "id": vid, "reason": reason}))
        self.failed[vid] = reason

    def _journal(self, rec: Record) -> None:
        try:
            self.journal.append(rec)
        except OSError as exc:
            raise CacheError(self.journal_path, f"cannot write ({os.strerror(exc.errno or errno.EIO)}); "
                                                f"the cache file is unchanged") from None

    def _append(self, rec: Record) -> None:
        self._journal(rec)
        if self.journal.count - self._settings_records >= max(256, self._main_count):
            self.commit()  # doubling keeps the total copying linear in the number of videos

    # -- committing ---------------------------------------------------------------
    def commit(self) -> None:
        """Merge the journal into a new file and atomically replace the cache with it."""
        tmp = f"{self.path}.tmp-{os.getpid()}"
        try:
            self._write_merged(tmp)
            fd = os.open(tmp, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
            os.replace(tmp, self.path)
            dfd = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
            os.fsync(dfd)
            os.close(dfd)
        except OSError as exc:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise CacheError(self.path, f"cannot write the cache ({os.strerror(exc.errno or errno.EIO)}); "
                                        f"the previous cache file is unchanged") from None
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        # Only now forget the journal; a kill before this line just repeats ids, which merging drops.
        self.journal.close()
        os.unlink(self.journal_path)
        self.journal = Journal(self.journal_path)
        self._journal(Record({"kind": "settings", "settings": self.settings}))
        self._main_count = len(self.done_ids)

    def _write_merged(self, tmp: str) -> None:
        old = h5py.File(self.path, "r") if os.path.exists(self.path) else None
        try:
            old_ids = list(old[S.IDS].asstr()[()]) if old is not None and len(old[S.IDS]) else []
            seen = set(old_ids)
            rows = []  # (offset into the journal scan order) for new videos, first occurrence wins
            fails: Dict[str, str] = {}
            if old is not None and S.FAIL_IDS in old and len(old[S.FAIL_IDS]):
                fails = dict(zip(old[S.FAIL_IDS].asstr()[()], old[S.FAIL_REASONS].asstr()[()]))
            for k, (_, rec) in enumerate(scan(self.journal_path, load_arrays=False)):
                m = rec.meta
                if m["kind"] == "video" and m["id"] not in seen:
                    seen.add(m["id"])
                    rows.append(k)
                elif m["kind"] == "failure":
                    fails[m["id"]] = m["reason"]
            fails = {i: r for i, r in fails.items() if i not in seen}
            n_old, n_new = len(old_ids), len(rows)
            N, D = int(self.settings["frames"]), int(self.settings["dim"])
            with h5py.File(tmp, "w") as f:
                for key, val in self.settings.items():
                    f.attrs[key] = val
                emb = f.create_dataset(S.EMB, (n_old + n_new, N, D), np.float16,
                                       chunks=(1, N, D), maxshape=(None, N, D))
                times = f.create_dataset(S.TIMES, (n_old + n_new, N), np.float32)
                cols = {k: [] for k in (S.IDS, S.SPLITS, S.CAPTIONS, *S.VIDEO_NUMBERS)}
                if old is not None:
                    for s in range(0, n_old, _COPY_BLOCK):
                        e = min(s + _COPY_BLOCK, n_old)
                        emb[s:e] = old[S.EMB][s:e]
                        times[s:e] = old[S.TIMES][s:e]
                    for key in cols:
                        if key in old and len(old[key]):
                            ds = old[key]
                            cols[key] = list(ds.asstr()[()]) if ds.dtype.kind == "O" else list(ds[()])
                        else:
                            cols[key] = [""] * n_old if key in S.VIDEO_STRINGS else [0] * n_old
                index = {n: i for i, n in enumerate(self._classes)}
                want = set(rows)
                row = n_old
                for k, (_, rec) in enumerate(scan(self.journal_path)):
                    if k not in want:
                        continue
                    m = rec.meta
                    emb[row] = rec.emb
                    times[row] = rec.t
                    cols[S.IDS].append(m["id"])
                    cols[S.SPLITS].append(m.get("split", ""))
                    cols[S.CAPTIONS].append(m.get("caption", ""))
                    cols[S.LABELS].append(index[m["label"]] if m.get("label") is not None else -1)
                    cols[S.N_DISTINCT].append(m.get("n_distinct", 0))
                    cols[S.DURATION].append(m.get("duration", 0.0))
                    cols[S.FPS].append(m.get("fps", 0.0))
                    row += 1
                for key in S.VIDEO_STRINGS:
                    f.create_dataset(key, data=np.array(cols[key], dtype=object), dtype=_STR)
                for key, dt in S.VIDEO_NUMBERS.items():
                    f.create_dataset(key, data=np.array(cols[key], dtype=dt))
                f.create_dataset(S.CLASS_NAMES, data=np.array(self._classes, dtype=object), dtype=_STR)
                text = np.stack([self._text[n] for n in self._classes]) if self._classes \
                    else np.zeros((0, D), np.float16)
                f.create_dataset(S.TEXT_EMB, data=text.astype(np.float16))
                f.create_dataset(S.FAIL_IDS, data=np.array(list(fails), dtype=object), dtype=_STR)
                f.create_dataset(S.FAIL_REASONS, data=np.array(list(fails.values()), dtype=object), dtype=_STR)
        finally:
            if old is not None:
                old.close()

    def close(self) -> None:
        """Commit what is pending, drop the empty journal and release the lock."""
        if self._lock_fd < 0:
            return
        try:
            self.commit()
            self.journal.close()
            os.unlink(self.journal_path)  # holds only the settings record now
        finally:
            self.journal.close()
            os.close(self._lock_fd)
            self._lock_fd = -1

    def abandon(self) -> None:
        """Release the lock without committing (the journal stays for the next run)."""
        if self._lock_fd >= 0:
            self.journal.close()
            os.close(self._lock_fd)
            self._lock_fd = -1
