"""The clipvid HDF5 cache: schema, single writer, numpy reader and validation (no torch)."""
from cache.reader import CacheReader, open_cache
from cache.writer import CacheWriter

__all__ = ["CacheReader", "CacheWriter", "open_cache"]
