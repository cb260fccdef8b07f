"""Find a cached video's file (never outside its root) and make thumbnails of search hits."""
from typing import List, Optional

from extract.thumbs import FFMPEG_TIMEOUT_S, THUMB_WIDTH, default_root, grab_frame  # noqa: F401 (defined once there)


def find_video(root: str, vid: str) -> Optional[str]:
    """The file of video id `vid` under `root`, or None when it is not there (or would lie outside root)."""
    from evaluate.media import safe_path
    return safe_path(root, vid)


def thumbnails(hits: list, root: str, progress: bool = False) -> List[Optional[bytes]]:
    """JPEG of each hit's best moment (objects with .id and .time), None where the file is missing or unreadable."""
    from clipvid.progress import progress as progress_display
    out = []
    for hit in progress_display(hits, desc="thumbnails", unit="video", quiet=not progress):
        path = find_video(root, hit.id)
        out.append(grab_frame(path, hit.time) if path else None)
    return out
