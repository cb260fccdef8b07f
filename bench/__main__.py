"""`python -m bench [NAME ...]`: run every benchmark (or the named ones); each writes bench/results/NAME.json."""
import argparse
import importlib

from clipvid.helptext import add_examples
import sys
import time

ALL = ("decode", "pipeline", "embed", "train", "memory", "search", "scale", "train_scale", "predict", "gpu",
       "backbones")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run benchmarks; each prints ratios measured side by side and writes "
                    "bench/results/NAME.json (figures: bench/PERFORMANCE.md). Not part of the tests.",
        epilog=f"benchmarks (default: all, in this order): {', '.join(ALL)}\n"
               "exit status: 0 done; 2 unknown benchmark name.")
    return add_examples(ap, ["python -m bench                  # every benchmark (long)",
                             "python -m bench decode train     # two of them",
                             "python -m bench.search           # one, by its module"])


def main(argv=None) -> int:
    ap = _parser()
    ap.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    names = ap.parse_args(argv).names or list(ALL)
    unknown = [n for n in names if n not in ALL]
    if unknown:
        print(f"error: unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(ALL)}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    for name in names:
        t = time.perf_counter()
        print(f"== bench.{name}", flush=True)
        importlib.import_module(f"bench.{name}").main()
        print(f"== bench.{name}: {time.perf_counter() - t:.0f} s\n", flush=True)
    print(f"all benchmarks: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
