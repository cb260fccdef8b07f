"""The clipvid HDF5 cache: schema, single writer, numpy reader and validation (no torch)."""
from cache.errors import CacheError, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_DATA
from cache.reader import CacheReader, open_cache
from cache.writer import CacheWriter

__all__ = ["CacheError", "CacheReader", "CacheWriter", "open_cache",
           "EXIT_OK", "EXIT_PARTIAL", "EXIT_USAGE", "EXIT_DATA"]
