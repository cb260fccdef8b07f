"""The `clipvid` command: one entry point for every stage (clipvid/__main__.py)."""
