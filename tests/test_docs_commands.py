"""Every command line shown in README.md and docs/ runs as written on a small demo set (random:tiny weights)."""
import csv
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
from typing import List, Tuple

import pytest

from conftest import ROOT, run_cli

MODEL = "random:tiny"        # no machine here can download CLIP's weights: every model name runs as random:tiny
# Commands shown but not run here, each with the reason (matched as a substring of the command line).
NOT_RUN = {
    "./run_pipeline.sh": "the whole demo pipeline, run by tests/test_pipeline_e2e.py",
    "./run_tests.sh": "the test suite itself",
    "dask scheduler": "a long-running cluster process; tests/test_extract_cluster.py starts real ones",
    "dask worker": "a long-running cluster process; tests/test_extract_cluster.py starts real ones",
    "--scheduler tcp://head:": "needs the cluster above; tests/test_extract_cluster.py runs extract on a real one",
    "--scheduler tls://head:": "needs a TLS cluster of one's own; tests/test_local_cluster_tls.py runs one",
    "--serve": "a server that runs until Ctrl-C; tests/test_evaluate_serve.py drives it",
    "python -m bench": "benchmarks build their own data and are not part of the tests",
}
COMMAND_START = re.compile(r"^(python -m |\./run_|\.venv/bin/|dask )")
# A placeholder: an all-caps word standing alone (OUT, SOURCE, M), brackets of optional parts, or an ellipsis.
PLACEHOLDER = re.compile(r"(?<![\w/.-])[A-Z][A-Z_]*(?![\w/.-])|\[|\.\.\.|<")
Command = Tuple[str, str]   # (file:line, command line as shown)


def pages() -> List[str]:
    """README.md first, then docs/commands.md (it makes what later pages use), then every other page."""
    rest = sorted(p for p in glob.glob(os.path.join(ROOT, "docs", "*.md")) if not p.endswith("commands.md"))
    return [os.path.join(ROOT, "README.md"), os.path.join(ROOT, "docs", "commands.md"), *rest]


def fences(path: str) -> List[Tuple[str, int, List[str]]]:
    """(language, line number of the first line, lines) of each fenced block of a Markdown file."""
    out, lang, start, body = [], None, 0, []
    for n, line in enumerate(open(path, encoding="utf-8").read().splitlines(), 1):
        if line.startswith("```"):
            if lang is None:
                lang, start, body = line[3:].strip(), n + 1, []
            else:
                out.append((lang, start, body))
                lang = None
        elif lang is not None:
            body.append(line)
    return out


def shown_commands() -> List[Command]:
    """Every line of every ```bash block, in page order."""
    found = []
    for path in pages():
        rel = os.path.relpath(path, ROOT)
        for lang, start, body in fences(path):
            if lang == "bash":
                found += [(f"{rel}:{start + i}", line.strip()) for i, line in enumerate(body)
                          if line.strip() and not line.lstrip().startswith("#")]
    return found


def not_run_reason(command: str) -> str:
    return next((why for key, why in NOT_RUN.items() if key in command), "")


def as_run(command: str) -> List[str]:
    """The command's arguments as the test runs them: this environment's python/clipvid, random:tiny weights."""
    args = shlex.split(command, comments=True)
    bindir = os.path.dirname(sys.executable)
    if args[0] == "python":
        args[0] = sys.executable
    elif args[0].startswith(".venv/bin/"):
        args[0] = os.path.join(bindir, os.path.basename(args[0]))
    if "--clip-model" in args:
        for i, arg in enumerate(args[:-1]):
            if arg == "--clip-model" and not args[i + 1].startswith("random:"):
                args[i + 1] = MODEL                    # random weights already run anywhere: kept
    elif args[1:3] == ["-m", "extract"] or args[1:2] == ["extract"]:
        args += ["--clip-model", MODEL]            # extract's default model (ViT-B/32) has no weights here
    return args


def test_every_shown_command_is_in_a_tested_block():
    """Commands live in ```bash blocks (which the demo test runs), never in other blocks; a command written
    inline in prose, complete with its arguments, is one of those lines or is not run for a stated reason."""
    fenced = [c for _, c in shown_commands()]
    assert len(fenced) >= 20, fenced
    problems = []
    for path in pages():
        rel = os.path.relpath(path, ROOT)
        text = open(path, encoding="utf-8").read()
        for lang, start, body in fences(path):
            if lang not in ("bash", "python", "text", ""):
                problems.append(f"{rel}:{start}: a ```{lang} block (use ```bash for commands: they are tested)")
            if lang != "bash":
                problems += [f"{rel}:{start + i}: a command outside a ```bash block: {line.strip()}"
                             for i, line in enumerate(body) if COMMAND_START.match(line.strip())]
        prose, inside = [], False
        for line in text.splitlines():                 # the lines outside fenced blocks
            inside = inside != line.startswith("```")
            prose.append("" if inside or line.startswith("```") else line)
        prose = "\n".join(prose)
        for span in re.findall(r"`([^`\n]+)`", prose):
            if (COMMAND_START.match(span) and " " in span.split(" -m ", 1)[-1] and not PLACEHOLDER.search(span)
                    and not any(span in c for c in fenced) and not not_run_reason(span)):
                problems.append(f"{rel}: `{span}` is shown inline but no ```bash block runs it")
    for key in ("--serve", "./run_pipeline.sh"):    # each exemption still matches something shown
        assert any(key in c for c in fenced), key
    assert not problems, "\n".join(problems)


def test_substitutions_keep_the_command():
    assert as_run('python -m predict c.csv --labels "a b,c" --clip-model ViT-B/32 --out p/  # zero-shot') == [
        sys.executable, "-m", "predict", "c.csv", "--labels", "a b,c", "--clip-model", MODEL, "--out", "p/"]
    assert as_run("python -m extract videos/ --out cache.h5")[-2:] == ["--clip-model", MODEL]
    assert as_run("python -m extract v/ --out-dir c/ --clip-model ViT-B/32 --clip-model random:x")[-4:] == [
        "--clip-model", MODEL, "--clip-model", "random:x"]
    assert as_run("python -m train cache.h5 --out runs/")[-1] == "runs/"


def _write_csv(path: str, header: List[str], rows: List[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> str:
    """A folder holding every input the pages name: videos/ (12 classes x 6), new_videos/, list.csv,
    clips.csv, kinetics400_val.csv with clips/, queries.txt and other.h5 (new_videos/ extracted)."""
    root = str(tmp_path_factory.mktemp("docs_world"))
    run_cli("-m", "extract.synthetic", os.path.join(root, "videos"), "--per-class", "6", "--quiet")
    run_cli("-m", "extract.synthetic", os.path.join(root, "new_videos"), "--per-class", "1", "--seed", "1", "--quiet")
    firsts = sorted(glob.glob(os.path.join(root, "videos", "*", "*_000.mp4")))
    news = sorted(glob.glob(os.path.join(root, "new_videos", "*", "*.mp4")))
    _write_csv(os.path.join(root, "list.csv"), ["path", "label"],
               [[os.path.relpath(p, root), os.path.basename(os.path.dirname(p))] for p in firsts])
    _write_csv(os.path.join(root, "clips.csv"), ["path", "label"],
               [[os.path.relpath(p, root), os.path.basename(os.path.dirname(p))] for p in news])
    os.makedirs(os.path.join(root, "clips"))
    rows = []
    for i, p in enumerate(firsts):                  # Kinetics names clips <youtube_id>_<start>_<end>.mp4
        shutil.copy(p, os.path.join(root, "clips", f"yt{i:09d}_000010_000020.mp4"))
        rows.append([os.path.basename(os.path.dirname(p)), f"yt{i:09d}", 10, 20, "validate"])
    _write_csv(os.path.join(root, "kinetics400_val.csv"), ["label", "youtube_id", "time_start", "time_end", "split"],
               rows)
    with open(os.path.join(root, "queries.txt"), "w", encoding="utf-8") as f:
        f.write("a ball rolling to the left\n\nsomething growing\n")
    run_cli("-m", "extract", os.path.join(root, "new_videos"), "--out", os.path.join(root, "other.h5"),
            "--clip-model", MODEL, "--quiet")
    return root


@pytest.mark.slow
def test_shown_commands_run_on_the_demo(world):
    """Each command (once, in page order) exits 0 in the demo folder; what the quickstart names exists."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    ran, seen = [], set()
    for where, command in shown_commands():
        args = as_run(command)
        if not_run_reason(command) or tuple(args) in seen:
            continue
        seen.add(tuple(args))
        out = subprocess.run(args, cwd=world, env=env, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, (f"{where}: `{command}` exited {out.returncode}\n"
                                     f"{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
        ran.append(where)
    assert len(ran) >= 15, ran
    for made in ("cache.h5", "list.h5", "k400.h5", "report/report.html", "report_other/report.html",
                 "pred/predictions.csv", "pred/timeline.html", "pred_timeline/timeline.html",
                 "pred_zeroshot/predictions.csv", "hits.html", "hits.csv"):
        assert os.path.exists(os.path.join(world, made)), made
