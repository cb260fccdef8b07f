"""`python -m bench [NAME ...]`: run every benchmark (or the named ones) under the bench lock; each writes bench/results/NAME.json."""
import argparse
import importlib
import sys
import time

from bench import common
from clipvid.errors import EXIT_OK, UsageError, exit_status
from clipvid.helptext import add_examples
from clipvid.options import Parser

ALL = ("decode", "pipeline", "embed", "train", "memory", "search", "scale", "scale_search", "train_scale", "predict",
       "gpu", "backbones")


def _parser() -> argparse.ArgumentParser:
    ap = Parser(
        prog="python -m bench",
        description="Run benchmarks one at a time under the bench lock ($CLIPVID_BENCH_LOCK, default "
                    "~/.cache/clipvid/bench/bench.lock); each prints ratios measured side by side and writes "
                    "a stamped bench/results/NAME.json (commit, machine, load, repeats); then "
                    "`python -m bench.report --docs` writes the tables in the docs. Not part of the tests.",
        epilog=f"benchmarks (default or 'all': every one, in this order): {', '.join(ALL)}\n"
               "exit status: 0 done; 2 unknown benchmark name.")
    return add_examples(ap, ["python -m bench all && python -m bench.report --docs   # the whole rerun (hours)",
                             "python -m bench decode train     # two of them",
                             "python -m bench.search           # one, by its module"])


def main(argv=None) -> int:
    ap = _parser()
    ap.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    names = [n for n in ap.parse_args(argv).names if n != "all"] or list(ALL)
    return exit_status(lambda: _run(names), interrupted=lambda: "interrupted: the results written so far are kept")


def _run(names) -> int:
    unknown = [n for n in names if n not in ALL]
    if unknown:
        raise UsageError(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(ALL)}")
    start = time.perf_counter()
    with common.bench_lock():   # one sitting: no other benchmark runs between these
        for name in names:
            t = time.perf_counter()
            print(f"== bench.{name}", flush=True)
            sys.argv = [f"bench.{name}"]       # each module's own defaults, whatever this command was given
            importlib.import_module(f"bench.{name}").main()
            print(f"== bench.{name}: {time.perf_counter() - t:.0f} s\n", flush=True)
    print(f"all benchmarks: {time.perf_counter() - start:.0f} s")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
