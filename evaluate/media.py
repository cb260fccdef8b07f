"""Files the search server may send: only regular files under the source root; HTTP byte ranges."""
import os
import re
from typing import Optional, Tuple

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def safe_path(root: str, rel: str) -> Optional[str]:
    """The real path of `rel` under `root`, or None for anything that is not a regular file inside root.

    `rel` is a decoded relative path: absolute paths, `..` parts, backslashes, NUL and symbolic links that
    lead out of the root are all refused (the real path must still lie under the real root).
    """
    if not rel or "\0" in rel or "\\" in rel or rel.startswith("/") or os.path.isabs(rel):
        return None
    if any(part == ".." for part in rel.split("/")):
        return None
    base = os.path.realpath(root)
    path = os.path.realpath(os.path.join(base, rel))
    if os.path.commonpath([base, path]) != base or path == base or not os.path.isfile(path):
        return None
    return path


def parse_range(header: Optional[str], size: int) -> Optional[Tuple[int, int]]:
    """(first, last) byte of a single `Range: bytes=a-b` within size; None means send the whole file.

    Raises ValueError for a range that cannot be satisfied (the server answers 416).
    """
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None  # several ranges or another unit: a server may ignore Range and send everything
    if not m.group(1):  # bytes=-n: the last n bytes
        n = int(m.group(2))
        if n == 0 or size == 0:
            raise ValueError("empty suffix range")
        return max(0, size - n), size - 1
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) else size - 1
    if first >= size or last < first:
        raise ValueError("range outside the file")
    return first, min(last, size - 1)
