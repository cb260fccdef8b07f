"""SOURCE -> a cache in the right embedding space: extract new videos (resuming) or open an existing cache."""
import os
from dataclasses import dataclass, field
from typing import Dict, Optional, Set

from clipvid.errors import CacheError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def is_cache_file(path: str) -> bool:
    """Whether `path` is an HDF5 file (a cache given as SOURCE), by its signature."""
    try:
        with open(path, "rb") as f:
            return f.read(8) == HDF5_MAGIC
    except OSError:
        return False


@dataclass
class Space:
    """The embedding space videos must be extracted into: CLIP model, N and (for a head) its fingerprint."""
    clip_model: str
    frames: int
    dim: Optional[int] = None
    fingerprint: Optional[str] = None      # the head's; None for zero-shot
    owner: str = ""                        # what asks for it, for messages ("the head runs/lstm")


@dataclass
class Prepared:
    """The cache to read, which of its videos came from SOURCE (None: all), and SOURCE's failures."""
    cache: str
    ids: Optional[Set[str]]
    root: str                              # where video ids are relative to (player, thumbnails)
    failures: Dict[str, str] = field(default_factory=dict)
    extracted: int = 0
    skipped: int = 0


def mismatch(settings: dict, space: Space, where: str) -> Optional[str]:
    """Which setting of a cache (or of an extraction about to run) differs from the space, or None."""
    from cache.schema import fingerprint
    if space.fingerprint is None or fingerprint(settings) == space.fingerprint:
        return None
    if int(settings.get("frames", -1)) != space.frames:
        return (f"{where} has N={settings.get('frames')} frames per video, but {space.owner} was trained "
                f"with N={space.frames}")
    if space.dim is not None and int(settings.get("dim") or space.dim) != space.dim:
        return f"{where} has D={settings.get('dim')}, but {space.owner} was trained with D={space.dim}"
    if str(settings.get("clip_model")) != space.clip_model:
        return (f"{where} was made with CLIP model {settings.get('clip_model')!r}, but {space.owner} was "
                f"trained with {space.clip_model!r}")
    return (f"{where} differs from what {space.owner} was trained with in its CLIP weights or sampler "
            f"(model {settings.get('clip_model')!r}, weights {str(settings.get('weights_hash'))[:12]})")


def open_existing(path: str, space: Space) -> Prepared:
    """SOURCE is a cache: check its space; every video in it is predicted."""
    from cache.reader import open_cache
    from extract.thumbs import default_root
    with open_cache(path) as reader:
        why = mismatch(reader.settings, space, path)
        if space.fingerprint is None and reader.frames != space.frames and space.frames > 0:
            why = None  # zero-shot reads whatever N the cache has
        failures = dict(reader.failures)
        root = default_root(path, reader.settings.get("source_root"))
    if why:
        raise CacheError(path, f"refused: {why}")
    return Prepared(path, None, root, failures)


def extract_into(source_arg: str, videos: Optional[str], cache: str, space: Space, workers: Optional[int],
                 scheduler: Optional[str], device: str, timeout: float, progress: bool) -> Prepared:
    """Extract SOURCE's videos into `cache` with the space's model and N (resuming, as extract does)."""
    from extract.pipeline import Options, precheck, run, weights_settings
    from extract.sources import load_source
    source = load_source(source_arg, videos)
    opts = Options(clip_model=space.clip_model, frames=space.frames, workers=workers, scheduler=scheduler,
                   device=device, video_timeout=timeout, progress=progress)
    settings = weights_settings(opts, source.root, space.dim or 0, cache)
    why = mismatch(settings, space, f"CLIP model {space.clip_model!r} on this machine")
    if why:
        raise CacheError(cache, f"refused: {why}")
    if os.path.exists(cache):
        from cache.reader import read_settings
        why = mismatch(read_settings(cache), space, cache)
        if why:
            raise CacheError(cache, f"refused: {why}; use another --cache")
    precheck(cache, settings)
    summary = run(source, cache, opts, log=lambda *a, **k: None)
    ids = {item.id for item in source.items}
    from cache.reader import open_cache
    with open_cache(cache) as reader:  # the reasons exactly as the cache's /failures records them
        failures = {vid: why for vid, why in reader.failures if vid in ids}
    return Prepared(cache, ids, source.root, failures, summary.cached, summary.skipped)
