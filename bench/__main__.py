"""`python -m bench [NAME ...]`: run every benchmark (or the named ones); each writes bench/results/NAME.json."""
import importlib
import sys
import time

ALL = ("decode", "pipeline", "embed", "train", "memory", "search", "scale")


def main(argv=None) -> int:
    names = list(argv if argv is not None else sys.argv[1:]) or list(ALL)
    unknown = [n for n in names if n not in ALL]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(ALL)}", file=sys.stderr)
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
