"""Find the videos of a SOURCE: a folder per class, a path[,label,split,caption] CSV, or a Kinetics CSV + clip folder."""
import csv
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from clipvid.errors import DataError, UsageError

VIDEO_EXTS = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".gif", ".mpg", ".mpeg", ".m4v", ".flv",
              ".wmv", ".3gp", ".ts", ".mts", ".m2ts", ".ogv", ".vob", ".y4m"}
_KINETICS_SPLITS = {"validate": "val", "validation": "val"}


class SourceError(DataError):
    """A SOURCE that is missing or cannot be read (exit 3), naming the file and the reason."""


@dataclass(frozen=True)
class VideoItem:
    id: str                  # path relative to the source root: the video's key in the cache
    path: str                # where to read it
    label: Optional[str]     # class name, None when unlabelled
    split: str = ""
    caption: str = ""


@dataclass
class Source:
    root: str
    items: List[VideoItem]
    classes: List[str]       # sorted class names that occur in items
    warnings: List[str]


def _is_video_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in VIDEO_EXTS


def _walk(folder: str, root: str, label: Optional[str], out: List[VideoItem]) -> None:
    # Directories are not followed through symlinks (no loops); files are (a link is a video).
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if _is_video_name(entry.name):
            # A directory named like a video is kept, so it is reported as a failure, not lost.
            out.append(VideoItem(os.path.relpath(entry.path, root), entry.path, label))
        elif entry.is_dir(follow_symlinks=False):
            _walk(entry.path, root, label, out)


def from_folder(root: str) -> Source:
    items: List[VideoItem] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if _is_video_name(entry.name):
            items.append(VideoItem(entry.name, entry.path, None))
        elif entry.is_dir():
            _walk(entry.path, root, entry.name, items)
    classes = sorted({i.label for i in items if i.label is not None})
    return Source(root, items, classes, [])


def _read_rows(path: str) -> Tuple[List[str], List[Tuple[int, Dict[str, str]]]]:
    """Header and (line number, row) pairs; BOM and CRLF accepted; ragged rows are errors."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            rows = list(reader)
    except UnicodeDecodeError:
        raise SourceError(path, "not UTF-8 text")
    except csv.Error as exc:
        raise SourceError(path, f"not a readable CSV ({exc})")
    rows = [(i + 1, r) for i, r in enumerate(rows) if any(c.strip() for c in r)]
    if not rows:
        raise SourceError(path, "empty CSV (no header)")
    header = [h.strip().lower() for h in rows[0][1]]
    out = []
    for line, r in rows[1:]:
        if len(r) != len(header):
            raise SourceError(path, f"line {line} has {len(r)} fields, the header has {len(header)}")
        out.append((line, dict(zip(header, (c.strip() for c in r)))))
    return header, out


def from_csv(path: str) -> Source:
    header, rows = _read_rows(path)
    if "youtube_id" in header:
        return from_kinetics(path, header, rows)
    if "path" not in header:   # label, split and caption are optional: without a label a video is unlabelled
        raise SourceError(path, f"no 'path' column (header: {','.join(header)}); "
                          "expected path[,label,split,caption] or a Kinetics annotation CSV")
    root = os.path.dirname(os.path.abspath(path))
    items, warnings, empty = [], [], 0
    for line, row in rows:
        rel = row["path"]
        if not rel:
            raise SourceError(path, f"line {line} has an empty path")
        full = rel if os.path.isabs(rel) else os.path.join(root, rel)
        vid = os.path.normpath(os.path.relpath(full, root) if not os.path.isabs(rel) else rel)
        label = row.get("label") or None
        empty += label is None and "label" in row
        items.append(VideoItem(vid, full, label, row.get("split", ""), row.get("caption", "")))
    if empty:
        warnings.append(f"{path}: {empty} rows have an empty label; they are cached as unlabelled")
    classes = sorted({i.label for i in items if i.label is not None})
    return Source(root, items, classes, warnings)


def _clip_index(folder: str) -> Dict[str, str]:
    index: Dict[str, str] = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            if _is_video_name(name):
                index.setdefault(os.path.splitext(name)[0], os.path.join(dirpath, name))
    return index


def from_kinetics(path: str, header: List[str], rows, videos: Optional[str] = None) -> Source:
    for col in ("youtube_id", "time_start", "time_end"):
        if col not in header:
            raise SourceError(path, f"Kinetics CSV without a '{col}' column")
    root = os.path.abspath(videos or os.path.dirname(os.path.abspath(path)))
    index = _clip_index(root)
    items = []
    for line, row in rows:
        try:
            start, end = int(float(row["time_start"])), int(float(row["time_end"]))
        except ValueError:
            raise SourceError(path, f"line {line}: time_start/time_end are not numbers")
        stem = f"{row['youtube_id']}_{start:06d}_{end:06d}"
        found = index.get(stem) or index.get(row["youtube_id"])
        full = found or os.path.join(root, stem + ".mp4")   # missing clips become failures
        split = row.get("split", "")
        split = _KINETICS_SPLITS.get(split, split)
        items.append(VideoItem(os.path.relpath(full, root), full, row.get("label") or None, split))
    classes = sorted({i.label for i in items if i.label is not None})
    return Source(root, items, classes, [])


def _utf8(text: Optional[str]) -> Optional[str]:
    """A file name that is not valid UTF-8 (undecodable bytes) as text with \\xNN escapes."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _utf8_names(src: "Source") -> Tuple[List[VideoItem], List[str]]:
    """Ids and labels the cache can store; such videos then fail with a clear reason, not a crash."""
    items = [VideoItem(_utf8(i.id), i.path, _utf8(i.label), i.split, i.caption) for i in src.items]
    bad = sum(a.id != b.id for a, b in zip(items, src.items))
    if bad:
        src.warnings.append(f"{bad} file names are not valid UTF-8; they are listed with \\x escapes")
    return items, sorted({i.label for i in items if i.label is not None})


def load_source(source: str, videos: Optional[str] = None) -> Source:
    """Read SOURCE; duplicates are dropped with a warning; SourceError for unusable input."""
    if not os.path.exists(source):
        raise SourceError(source, "no such file or folder")
    if os.path.isdir(source):
        src = from_folder(source)
    elif source.lower().endswith((".csv", ".tsv", ".txt")) or not _is_video_name(source):
        src = from_csv(source)
        if videos and src.items and "youtube_id" not in _read_rows(source)[0]:
            raise UsageError(f"{source}: --videos applies to Kinetics CSVs only")
        if videos:
            src = from_kinetics(source, *_read_rows(source), videos=videos)
    else:
        raise UsageError(f"{source}: a single video is not a source; give its folder or a CSV")
    src.items, src.classes = _utf8_names(src)
    seen, unique, dups = set(), [], 0
    for item in src.items:
        if item.id in seen:
            dups += 1
            continue
        seen.add(item.id)
        unique.append(item)
    if dups:
        src.warnings.append(f"{dups} videos are listed more than once; each is cached once")
    src.items = unique
    if not unique:
        raise SourceError(source, f"no videos found (looked for {', '.join(sorted(VIDEO_EXTS))})")
    if not os.path.isdir(source):
        _check_some_exist(source, src)
    return src


def _check_some_exist(source: str, src: Source) -> None:
    """A CSV none of whose videos exist is a usage error (wrong folder), found before any work.
    Stops at the first video that exists, so a good list costs one stat."""
    if any(os.path.exists(item.path) for item in src.items):
        return
    first = src.items[0]
    raise SourceError(source, f"none of its {len(src.items)} videos exist, e.g. {first.id!r} -> "
                      f"{os.path.abspath(first.path)}; relative paths are resolved against {src.root}"
                      + (" (the CSV's folder)" if src.root == os.path.dirname(os.path.abspath(source))
                         else " (--videos)"))


def prompt_name(label: str) -> str:
    """The class name as text for CLIP: underscores to spaces, CamelCase split ('ApplyEyeMakeup')."""
    text = label.replace("_", " ")
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)
    return " ".join(text.split()).lower() if text != label or " " not in label else label
