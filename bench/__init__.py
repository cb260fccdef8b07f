"""Benchmarks: each `python -m bench.<name>` writes bench/results/<name>.json; `python -m bench` runs all."""
