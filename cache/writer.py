"""The single writer: frames go straight into the open shard after its committed rows, a journal
records each video at once, and a commit rewrites the open shard's small videos file and swaps in a
new manifest. Committed rows are never rewritten, so adding k videos costs O(k) frame bytes plus the
open shard's per-video columns and one mapping per shard (see cache.layout for the files)."""
import errno
import fcntl
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from cache import layout as L
from cache import manifest as M
from cache import schema as S
from clipvid.errors import CacheError
from cache.journal import Journal, Record, scan
from cache.shards import ShardAppender, intact_rows, row_arrays

SHARD_BYTES = 1 << 30   # frame bytes a shard holds at most; a session appends to the last until it is full
MAX_ROWS = 16384        # rows a shard holds at most: bounds the videos file a commit rewrites
MIN_ROWS = 256          # a new shard holds max(MIN_ROWS, the rows so far): few shards, little unused room
COMMIT_MIN = 256        # videos; commits also wait for V/8 new ones


class CacheWriter:
    """Owns one cache: lock, journal, shards and atomic manifest commits. One process at a time."""

    def __init__(self, path: str, settings: Dict[str, Any], shard_bytes: int = SHARD_BYTES, progress: bool = True):
        self.path = path
        self.progress = progress   # of a one-time upgrade of an older cache
        self.settings = dict(settings, schema_version=S.SCHEMA_VERSION)
        self.folder = L.sidecar(path)
        self.journal_path = L.journal_file(path)
        self.shard_bytes = int(shard_bytes)
        self._made_folder = False
        self._migrated = False
        self._lock_fd = self._lock()
        self._shard: Optional[ShardAppender] = None
        self._pending = 0          # journal records not yet in the manifest
        self.journal: Optional[Journal] = None
        try:
            self.state = self._read_existing()
            self._recover()
            if self._migrated:
                from cache.legacy import import_old_journal
                import_old_journal(self.path, self)
            self._collect_garbage()
        except BaseException:
            self.abandon()
            raise

    # -- opening -----------------------------------------------------------------
    def _lock(self) -> int:
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise CacheError(self.path, f"folder {folder} does not exist")
        if not os.access(folder, os.W_OK):
            raise CacheError(self.path, f"folder {folder} is not writable")
        if not os.path.isdir(self.folder):
            try:
                os.mkdir(self.folder)
                self._made_folder = True
            except OSError as exc:
                raise CacheError(self.path, f"cannot create {self.folder} ({os.strerror(exc.errno or errno.EIO)})")
        fd = os.open(os.path.join(self.folder, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
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

    def _read_existing(self) -> M.State:
        from cache.reader import open_cache  # a damaged file raises CacheError here
        if not os.path.exists(self.path):
            return M.State(dict(self.settings))
        with open_cache(self.path, columns=()) as r:   # ids only (an older layout reads every column)
            self._check(r.settings, "the cache")
            if not r.legacy:
                # A new source root (allowed by the caller) is recorded even when nothing is added.
                self._pending += r.settings.get("source_root") != self.settings.get("source_root")
                # A renamed cache (file and folder) is mapped again under its new name.
                self._pending += M.mapped_folder(self.path) not in (None, os.path.basename(self.folder))
                return M.from_reader(r)
            from cache.legacy import upgrade
            state = upgrade(r, self.settings, self._max_rows(), self.progress)
        self._commit_state(state)
        self._migrated = True
        return state

    def _max_rows(self) -> int:
        return max(1, min(MAX_ROWS, self.shard_bytes // L.row_bytes("emb", int(self.settings["frames"]),
                                                                    int(self.settings["dim"]))))

    def _recover(self) -> None:
        """Replay the journal of a killed run: its videos' rows are already in the open shard's frame
        file, and each record carries the running checksum of that shard, so a row lost in a crash
        (or torn) ends the replay there."""
        st = self.state
        records = [rec for _, rec in scan(self.journal_path)]
        head = records[0].meta if records else {}
        if head.get("kind") != "settings" or int(head["settings"].get("schema_version", 0)) != S.SCHEMA_VERSION:
            if len(records) > 1:   # an older clipvid's journal: its rows live in files this layout drops
                print(f"{self.path}: dropping {len(records) - 1} uncommitted entries an older clipvid left in "
                      f"{self.journal_path} (those videos are extracted again)", file=sys.stderr, flush=True)
            if os.path.exists(self.journal_path):
                os.unlink(self.journal_path)
            return
        self._check(head["settings"], f"the journal {self.journal_path}")
        videos = [r.meta for r in records if r.meta["kind"] == "video"]
        name = videos[0]["shard"] if videos else ""
        shard = next((s for s in st.shards if s.name == name), None)
        base = shard if shard else M.Shard(name, 0)
        videos = [m for m in videos if m["shard"] == name and m["row"] >= base.rows]
        good = intact_rows(L.shard_file(self.path, L.frames_name(name)), base, videos,
                           int(self.settings["frames"]), int(self.settings["dim"]))
        if good:
            if shard is None:
                shard = base
                st.shards.append(shard)
            self._load_columns(shard)
            first = sum(s.rows for s in st.shards[:st.shards.index(shard)])
        keep = {id(m) for m in videos[:good]}
        for rec in records[1:]:
            m = rec.meta
            if m["kind"] == "classes":
                self._apply_classes(m["names"], rec.emb)
            elif m["kind"] == "failure" and m["id"] not in st.index:
                st.failed[m["id"]] = m["reason"]
            elif m["kind"] == "video" and id(m) in keep:
                for col, values in shard.videos.items():
                    values.append(m["cols"][col])
                shard.rows, shard.crc, shard.dirty = shard.rows + 1, list(m["crc"]) + shard.crc[len(L.KINDS):], True
                st.put_video(m["id"], first + m["row"], m["cols"]["content"])
        self._pending += max(1, len(records) - 1)
        self.commit()

    def _load_columns(self, shard: M.Shard) -> None:
        """The per-video columns of a shard this writer adds rows to (its committed rows)."""
        if shard.videos is None:
            shard.videos = M.empty_columns() if not shard.rows else {
                name: col.tolist() for name, col in
                M.read_videos(L.shard_file(self.path, L.videos_name(shard.name)), shard.rows).items()}

    def _collect_garbage(self) -> None:
        """Remove shard files no committed manifest refers to (a killed writer's or compaction's)."""
        from cache.legacy import leftovers
        keep = {s.name for s in self.state.shards}
        for name in os.listdir(self.folder):
            m = L.SHARD_RE.match(name)
            if (m and m.group(1) not in keep) or ".tmp-" in name:
                os.unlink(os.path.join(self.folder, name))
        for name in leftovers(self.path):   # a migrated cache's old files
            os.unlink(name)

    # -- adding ------------------------------------------------------------------
    @property
    def done_ids(self) -> Dict[str, int]:
        """Ids already cached (a mapping id -> row; `in` tests membership)."""
        return self.state.index

    @property
    def failed(self) -> Dict[str, str]:
        return self.state.failed

    @property
    def class_names(self) -> List[str]:
        return list(self.state.classes)

    def content_of(self, vid: str) -> str:
        """The content fingerprint recorded for a cached id ("" when none was recorded)."""
        st = self.state
        row = st.index.get(vid)
        if row is None:
            return ""
        if row in st.content:
            return st.content[row]
        if st.committed_content is None:   # read on first use: an append alone never needs them
            st.committed_content = self._committed_content()
        return st.committed_content[row]

    def _committed_content(self) -> List[str]:
        """Fingerprints per logical row of the committed manifest (rows put since open are in
        state.content; a commit since keeps every other row's place and value)."""
        from cache.reader import open_cache
        if not os.path.exists(self.path):
            return []
        with open_cache(self.path, columns=("content",)) as r:
            return r.content.tolist()

    def _apply_classes(self, names: Sequence[str], text: np.ndarray) -> bool:
        changed = False
        for name, vec in zip(names, text):
            vec = np.asarray(vec, np.float16)
            if name not in self.state.text:
                self.state.classes.append(name)
            elif np.array_equal(self.state.text[name], vec):
                continue
            self.state.text[name] = vec
            changed = True
        return changed

    def set_classes(self, names: Sequence[str], text_emb: np.ndarray) -> None:
        """Register class names with their text embeddings [C, D]; old indices never move. Journalled."""
        names = list(names)
        if not names:
            return
        text = np.asarray(text_emb, np.float16).reshape(len(names), -1)
        if self._apply_classes(names, text):
            self._journal(Record({"kind": "classes", "names": names}, text, np.zeros(0, np.float32)))

    def add_video(self, vid: str, emb: np.ndarray, t: np.ndarray, label: Optional[str] = None,
                  split: str = "", caption: str = "", n_distinct: int = 0,
                  duration: float = 0.0, fps: float = 0.0, content: str = "", **more: Any) -> None:
        """Store one finished video: emb [N, D], t [N]; label is a class name or None; `more` fills
        other per-video columns (schema.VIDEO_COLUMNS). An id already cached is replaced (its row
        keeps its place; the old frames stay until `compact`)."""
        if label is not None and label not in self.state.text:
            raise ValueError(f"label {label!r} was not registered with set_classes")
        values = S.column_values(dict(more, id=vid, label=self.state.classes.index(label) if label is not None else -1,
                                      split=split or "", caption=caption or "", content=content or "",
                                      n_distinct=n_distinct, duration=duration, fps=fps))
        physical, crc = self._append_row(row_arrays(emb, t), values)
        shard = self._shard
        self._journal(Record({"kind": "video", "id": vid, "shard": shard.shard.name, "row": shard.rows - 1,
                              "crc": crc, "cols": values}))
        self.state.put_video(vid, physical, values["content"])
        if shard.full:   # commit it; the next video starts a new shard
            self.commit()
            shard.close()
            self._shard = None
        self._maybe_commit()

    def _append_row(self, rows: list, values: Dict[str, Any]):
        """Write one video's frame rows to the open shard and note its columns; returns (physical
        row, running checksums)."""
        shard = self._open_shard()
        try:
            crc = shard.append(rows)
        except OSError as exc:
            raise CacheError(shard.file, f"cannot write ({os.strerror(exc.errno or errno.EIO)}); "
                                         f"the committed cache is unchanged") from None
        last = shard.shard
        last.rows, last.crc, last.dirty = shard.rows, list(crc) + last.crc[len(L.KINDS):], True
        for name, col in last.videos.items():
            col.append(values[name])
        return self._shard_start() + shard.rows - 1, crc

    def add_failure(self, vid: str, reason: str) -> None:
        """Journal a video that could not be used, with a one-line reason."""
        reason = " ".join(str(reason).split()) or "unknown error"
        self._journal(Record({"kind": "failure", "id": vid, "reason": reason}))
        if vid not in self.state.index:
            self.state.failed[vid] = reason
        self._maybe_commit()

    def _shard_start(self) -> int:
        return sum(s.rows for s in self.state.shards[:-1])

    def _open_shard(self) -> ShardAppender:
        """The shard this session appends to: the last one while it is small, else a new one."""
        if self._shard is not None:
            return self._shard
        st = self.state
        N, D = int(self.settings["frames"]), int(self.settings["dim"])
        last = st.shards[-1] if st.shards else None
        if last is None or last.rows >= last.capacity:
            number = 1 + max((int(s.name) for s in st.shards), default=0)
            last = M.Shard(L.shard_name(number), 0, min(self._max_rows(), max(MIN_ROWS, st.physical_rows)))
            st.shards.append(last)
        try:
            self._load_columns(last)
            self._shard = ShardAppender(self.path, last, N, D)
        except OSError as exc:
            raise CacheError(L.shard_file(self.path, L.frames_name(last.name)),
                             f"cannot write ({os.strerror(exc.errno or errno.EIO)}); the committed cache is unchanged") \
                from None
        return self._shard

    # -- journal and commits ---------------------------------------------------------
    def _journal_head(self) -> None:
        """Start a journal with the settings it was written under."""
        self.journal = Journal(self.journal_path)
        if not self.journal.count:
            self._journal(Record({"kind": "settings", "settings": self.settings}), count=False)

    def _journal(self, rec: Record, count: bool = True) -> None:
        if self.journal is None:
            self._journal_head()
        try:
            self.journal.append(rec)
        except OSError as exc:
            raise CacheError(self.journal_path, f"cannot write ({os.strerror(exc.errno or errno.EIO)}); "
                                                f"the cache file is unchanged") from None
        self._pending += count

    def _maybe_commit(self) -> None:
        if self._pending >= max(COMMIT_MIN, len(self.state.ids) // 8):
            self.commit()

    def commit(self) -> None:
        """Make the shard rows durable, then atomically swap in a manifest that counts them."""
        if not self._pending and os.path.exists(self.path):
            return
        if self._shard is not None:
            try:
                self._shard.sync()
            except OSError as exc:
                raise CacheError(self.path, f"cannot write the cache ({os.strerror(exc.errno or errno.EIO)}); "
                                            f"the previous cache file is unchanged") from None
        self._commit_state(self.state)
        # Only now restart the journal: a kill before this line replays records the manifest
        # already counts, and replay skips rows below the committed count.
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        if os.path.exists(self.journal_path):
            os.unlink(self.journal_path)
        self._pending = 0

    def _commit_state(self, st: M.State) -> None:
        """The changed videos files of the shards, then the manifest that maps them (each renamed
        into place once durable)."""
        st.settings = dict(self.settings)
        tmp = os.path.join(self.folder, f"manifest.tmp-{os.getpid()}")
        try:
            for shard in st.shards:
                if shard.dirty:
                    shard.crc[-1] = M.write_videos(L.shard_file(self.path, L.videos_name(shard.name)), shard.videos)
                    shard.dirty = False
            M.sync_folder(self.folder)
            M.write(tmp, st, self.path)
            M.replace(tmp, self.path)
        except OSError as exc:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise CacheError(self.path, f"cannot write the cache ({os.strerror(exc.errno or errno.EIO)}); "
                                        f"the previous cache file is unchanged") from None
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def close(self) -> None:
        """Commit what is pending, drop the journal and release the lock."""
        if self._lock_fd < 0:
            return
        try:
            self.commit()
            if self.journal is not None:
                self.journal.close()
                self.journal = None
            if os.path.exists(self.journal_path):
                os.unlink(self.journal_path)
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Release the lock without committing (the journal stays for the next run)."""
        if self._lock_fd < 0:
            return
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        if self._shard is not None:
            self._shard.close()
            self._shard = None
        if self._made_folder and not os.path.exists(self.journal_path) and \
                not any(L.SHARD_RE.match(n) for n in os.listdir(self.folder)):
            for name in os.listdir(self.folder):   # nothing was ever written: leave no litter
                os.unlink(os.path.join(self.folder, name))
            os.rmdir(self.folder)
        os.close(self._lock_fd)
        self._lock_fd = -1
