"""Extraction stage: videos -> sampled frames -> CLIP embeddings -> cache, in parallel with Dask."""
