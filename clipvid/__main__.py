"""`clipvid COMMAND [options]`: every stage behind one command, with the options of `python -m <stage>`."""
import importlib
import sys
import textwrap
from typing import List, Optional

from clipvid.errors import EXIT_HELP, EXIT_OK, EXIT_USAGE

# command -> (module whose main(argv) runs it, what it does). Modules are imported only when asked
# for, so a missing stage (or its heavy imports) never stops the others.
COMMANDS = {
    "extract": ("extract.__main__", "videos -> CLIP frame embeddings in an HDF5 cache (python -m extract)"),
    "train": ("train.cli", "train heads and baselines on a cache (python -m train)"),
    "evaluate": ("evaluate.__main__", "HTML/Markdown/JSON report of trained heads (python -m evaluate)"),
    "search": ("evaluate.search", "rank a cache's videos for a free-text query (python -m evaluate.search)"),
    "predict": ("predict.__main__", "classify new videos with a trained head or class names (python -m predict)"),
    "cache": ("cache.__main__", "describe or check a cache (python -m cache)"),
    "bench": ("bench.__main__", "run benchmarks (python -m bench)"),
}

USAGE = "usage: clipvid COMMAND [options]   (clipvid COMMAND --help for its options)"


def _help() -> str:
    width = max(map(len, COMMANDS))
    lines = [USAGE, "", "CLIP for video: sample frames, embed them once, train and evaluate temporal heads.", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {what}" for name, (_, what) in COMMANDS.items()]
    lines += ["", *textwrap.wrap(EXIT_HELP, 100), "", "examples:",
              "  clipvid extract videos/ --out cache.h5 --clip-model ViT-B/32",
              "  clipvid train cache.h5 --head all --out runs/",
              "  clipvid evaluate cache.h5 --runs runs/ --out report/"]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(f"error: clipvid needs a command: {', '.join(COMMANDS)} (clipvid --help for more)", file=sys.stderr)
        return EXIT_USAGE
    if args[0] in ("-h", "--help"):
        print(_help())
        return EXIT_OK
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"error: clipvid: unknown command {name!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        return EXIT_USAGE
    module_name = COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name.split(".")[0]:
            raise   # a real missing dependency: its own traceback says which
        print(f"error: clipvid {name}: the {exc.name} stage is not installed in this environment "
              f"(run the set-up again: ./run_tests.sh or pip install -e .)", file=sys.stderr)
        return EXIT_USAGE
    status = module.main(rest)
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
