"""Identity of a source video: a cheap content fingerprint, and the check that a rerun's files
under cached ids are still the files that were cached."""
import hashlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Sequence

from clipvid.errors import CacheError

EDGE = 1 << 20    # bytes hashed from the start and from the end of a file
THREADS = 8       # files hashed at once: reading dominates, and hashlib releases the GIL


def fingerprint(path: str) -> str:
    """'<size>:<blake2b of the first and last MiB>' ('' when the file cannot be read). A changed
    mtime alone is not a change, and a same-size rewrite is caught unless it only touches the middle."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):   # a FIFO would block the open; the worker reports it
            return ""
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            h = hashlib.blake2b(digest_size=16)
            h.update(size.to_bytes(8, "little"))
            h.update(f.read(EDGE))
            if size > EDGE:
                f.seek(max(EDGE, size - EDGE))
                h.update(f.read(EDGE))
    except OSError:
        return ""
    return f"{size}:{h.hexdigest()}"


# One pool for the process (its threads start on first use): extract calls fingerprints() once per
# task, and a pool per call started and joined eight threads each time, on the main process that
# also feeds the workers.
_POOL = ThreadPoolExecutor(THREADS, thread_name_prefix="fingerprint")


def fingerprints(paths: Sequence[str]) -> List[str]:
    """fingerprint() of many files, several at a time, in order."""
    if len(paths) < 2:
        return [fingerprint(p) for p in paths]
    return list(_POOL.map(fingerprint, paths))


def changed_items(items: Sequence, stored: Callable[[str], str], out: str, replace: bool) -> list:
    """Of the already-cached `items`, those whose file no longer matches the recorded fingerprint.

    Without `replace`, the first such file stops the run with one line naming it. Videos cached
    before fingerprints were recorded ('' stored) are taken as they are."""
    recorded = [(it, stored(it.id)) for it in items]
    recorded = [(it, fp) for it, fp in recorded if fp]
    changed = []
    for start in range(0, len(recorded), 256):
        part = recorded[start:start + 256]
        for (item, old), new in zip(part, fingerprints([it.path for it, _ in part])):
            if new == old or not new:   # unreadable now: keep what is cached
                continue
            if not replace:
                raise CacheError(out, f"{item.path} is not the file cached as {item.id!r} (its content changed); "
                                      f"--replace-changed re-extracts changed files, or use another --out")
            changed.append(item)
    return changed


def check_root(out: str, old_root: Optional[str], new_root: str, allow: bool) -> None:
    """Refuse to mix videos of another source folder into a cache, unless allowed."""
    if allow or not old_root or os.path.realpath(old_root) == os.path.realpath(new_root):
        return
    raise CacheError(out, f"it holds videos of {old_root}, not of {new_root} (ids alike would name different "
                          f"files); use another --out, or --allow-new-root to add this folder's videos to it")
