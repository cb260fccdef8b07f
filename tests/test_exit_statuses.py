"""The same five mistakes, made with every command, give the same exit status and one `error:` line."""
import os

import pytest

from clipvid.__main__ import main as clipvid
from clipvid.errors import EXIT_DATA, EXIT_USAGE
from train.synthetic import write_synthetic_cache

COMMANDS = ["extract", "train", "evaluate", "search", "predict", "cache"]
# mistake -> the status every command gives for it
MISTAKES = {"no arguments": EXIT_USAGE, "unknown option": EXIT_USAGE, "missing input": EXIT_DATA,
            "unusable input": EXIT_DATA, "unwritable --out": EXIT_USAGE}
NO_OUT = {"cache"}   # `python -m cache` writes no --out: the fifth mistake cannot be made with it


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp("mistakes")
    cache = str(base / "real.h5")
    write_synthetic_cache(cache, num_classes=2, per_class=3, frames=4, dim=8, num_pairs=0)
    os.makedirs(base / "videos" / "a")
    os.makedirs(base / "runs")
    (base / "garbage.h5").write_bytes(b"\xff\xfe this is not a cache \x00\x01")
    (base / "garbage.csv").write_bytes(b"\xff\xfe this is not a CSV \x00\x01")
    (base / "queries.txt").write_text("a ball\n", encoding="utf-8")
    (base / "a_file").write_text("a file, so nothing can be written below it", encoding="utf-8")
    return base, cache


def _argv(command: str, mistake: str, base, cache: str) -> list:
    """The command line of `command` with exactly one mistake; `None` for the input means a made-up path."""
    takes_source = command in ("extract", "predict")
    good_input = str(base / "videos") if takes_source else cache
    inputs = {"missing input": str(base / "no_such_input"),
              "unusable input": str(base / ("garbage.csv" if takes_source else "garbage.h5"))}
    where = inputs.get(mistake, good_input)
    out = str(base / "a_file" / "out") if mistake == "unwritable --out" else str(base / f"out-{command}")
    argv = {
        "extract": [where, "--out", out + ".h5", "--clip-model", "random:tiny"],
        "train": [where, "--out", out],
        "evaluate": [where, "--runs", str(base / "runs"), "--out", out],
        "search": [where, "--queries", str(base / "queries.txt"), "--out", out + ".csv"],
        "predict": [where, "--labels", "a,b", "--clip-model", "random:tiny", "--out", out],
        "cache": ["info", where],
    }[command]
    if mistake == "no arguments":
        return []
    if mistake == "unknown option":
        return argv + ["--no-such-option"]
    return argv + (["--quiet"] if command != "cache" else [])


def _named(command: str, mistake: str, argv: list) -> str:
    """What the one error line must name: the option, the input or the output."""
    if mistake == "unknown option":
        return "--no-such-option"
    if mistake == "no arguments":
        return "required"
    if mistake == "unwritable --out":
        return argv[argv.index("--out") + 1]
    return argv[1] if command == "cache" else argv[0]


CASES = [(c, m) for c in COMMANDS for m in MISTAKES if not (m == "unwritable --out" and c in NO_OUT)]


@pytest.mark.parametrize("command,mistake", CASES, ids=[f"{c}-{m}" for c, m in CASES])
def test_same_mistake_same_status_and_message(files, command, mistake, capsys):
    base, cache = files
    argv = _argv(command, mistake, base, cache)
    try:
        status = clipvid([command, *argv])
    except SystemExit as exc:   # argparse's own mistakes end the parser
        status = exc.code
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert status == MISTAKES[mistake], (argv, captured.err)
    assert len(lines) == 1 and lines[0].startswith("error: "), (argv, captured.err)
    assert _named(command, mistake, argv) in lines[0], (argv, lines)
    assert captured.out == ""
