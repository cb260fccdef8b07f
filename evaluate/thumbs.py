"""Thumbnails for search pages: defined once in extract.thumbs (predict's pages use them too)."""
from extract.thumbs import FFMPEG_TIMEOUT_S, THUMB_WIDTH, default_root, find_video, grab_frame  # noqa: F401
