"""A new user's first mistakes: one line, the right exit status, before any work; and --help that
states every default and ends with real examples."""
import argparse
import importlib
import os
import subprocess
import sys

import pytest

from clipvid.errors import EXIT_DATA, EXIT_OK, EXIT_USAGE
from hostile_media import ROOT, clip, one_line_error
from conftest import run_cli
from train.cli import main as train_main
from train.synthetic import write_synthetic_cache


def _run(*args, **kw):
    return run_cli(*args, check=False, timeout=300, **kw)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    base = tmp_path_factory.mktemp("first")
    os.makedirs(base / "lists" / "clips")
    clip(base / "lists" / "clips" / "a.mp4")
    return base


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    path = tmp_path_factory.mktemp("first_syn") / "syn.h5"
    write_synthetic_cache(os.fspath(path), num_classes=30, per_class=4, frames=4, dim=8, seed=0)
    return path


@pytest.mark.slow
def test_extract_cuda_without_cuda_is_a_usage_error(videos):
    from extract.layout import cuda_count
    if cuda_count():
        pytest.skip("this machine has a CUDA GPU: --device cuda is valid here")
    proc = _run("-m", "extract", videos / "lists", "--out", videos / "cuda.h5", "--device", "cuda",
                "--clip-model", "random:tiny")
    assert proc.returncode == EXIT_USAGE
    assert "--device: cuda asked for, but torch sees no CUDA or ROCm GPU" in one_line_error(proc)
    assert not [f for f in os.listdir(videos) if f.startswith("cuda.h5")]


@pytest.mark.slow
def test_csv_whose_paths_resolve_nowhere_names_the_resolved_path(videos):
    # Written as if relative to where the user stands, but paths are read relative to the CSV.
    with open(videos / "lists" / "wrong.csv", "w") as f:
        f.write("path,label\nlists/clips/a.mp4,a\nlists/clips/b.mp4,b\n")
    proc = _run("-m", "extract", "lists/wrong.csv", "--out", "w.h5", "--clip-model", "random:tiny", cwd=videos)
    assert proc.returncode == EXIT_DATA
    line = one_line_error(proc)
    assert "none of its 2 videos exist" in line
    assert os.fspath(videos / "lists" / "lists" / "clips" / "a.mp4") in line
    assert f"resolved against {videos / 'lists'} (the CSV's folder)" in line
    assert not os.path.exists(videos / "w.h5")


def test_bench_help_lists_benchmarks_without_running_any():
    proc = _run("-m", "bench", "--help")
    assert proc.returncode == EXIT_OK and proc.stderr == ""
    assert "decode" in proc.stdout and "examples:" in proc.stdout and "==" not in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", ["decode", "embed", "memory", "pipeline", "report", "scale", "scale_search",
                                  "search", "train", "train_scale", "predict", "gpu"])
def test_each_benchmark_module_has_help_and_runs_nothing(name, tmp_path):
    """`python -m bench.NAME --help` describes it and exits 0 at once (several build caches of many GB)."""
    before = sorted(os.listdir(tmp_path))
    proc = _run("-m", f"bench.{name}", "--help", env=dict(os.environ, PYTHONPATH=ROOT, CLIPVID_SCALE_DIR=str(tmp_path),
                                                            TMPDIR=str(tmp_path)))
    assert proc.returncode == EXIT_OK, proc.stderr
    assert f"bench.{name}" in proc.stdout and "==" not in proc.stdout
    assert sorted(os.listdir(tmp_path)) == before


def test_cache_without_a_command_says_which_exist():
    proc = _run("-m", "cache")
    assert proc.returncode == EXIT_USAGE
    line = one_line_error(proc)
    assert "required" in line and "info" in line and "validate" in line


def test_cache_info_into_a_closed_pipe_is_not_damage(syn):
    proc = subprocess.Popen([sys.executable, "-m", "cache", "info", os.fspath(syn)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    proc.stdout.close()   # like `| head` that has already exited: every write meets a closed pipe
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == EXIT_OK, err
    assert err == ""


def test_cache_info_shows_source_root_and_captions(tmp_path):
    from cache import schema as S
    from cache.writer import CacheWriter
    import numpy as np
    path = os.fspath(tmp_path / "cap.h5")
    settings = S.make_settings("synthetic:0", "h", True, 4, 2, {"kind": "synthetic"}, ["{}"], "/data/videos")
    writer = CacheWriter(path, settings)
    writer.set_classes(["a"], np.ones((1, 4), np.float32))
    for i, caption in enumerate(["a dog runs", "", "a cat sleeps"]):
        writer.add_video(f"a/{i}.mp4", np.ones((2, 4), np.float16), np.zeros(2, np.float32), "a", caption=caption)
    writer.close()
    out = _run("-m", "cache", "info", path)
    assert out.returncode == EXIT_OK, out.stderr
    assert "source     /data/videos" in out.stdout
    assert "3 cached, 0 failed, 0 unlabelled, 2 with a caption" in out.stdout


def test_train_refusal_leaves_no_output_folder(syn, tmp_path, capsys):
    out = tmp_path / "runs" / "new"
    status = train_main([os.fspath(syn), "--out", os.fspath(out), "--frames", "99", "--quiet"])
    assert status == EXIT_USAGE
    assert "--frames must be between 1 and 4" in capsys.readouterr().err
    assert not os.path.exists(out)
    existing = tmp_path / "kept"
    os.makedirs(existing)
    assert train_main([os.fspath(syn), "--out", os.fspath(existing), "--frames", "99", "--quiet"]) == EXIT_USAGE
    assert os.path.isdir(existing)            # a folder the user had is never removed


class _Parser(Exception):
    pass


def _parser_of(module: str) -> argparse.ArgumentParser:
    """The parser a command builds, caught as it starts parsing (nothing runs)."""
    real = argparse.ArgumentParser.parse_args

    def grab(self, *_a, **_k):
        raise _Parser(self)
    argparse.ArgumentParser.parse_args = grab
    try:
        importlib.import_module(module).main([])
    except _Parser as caught:
        return caught.args[0]
    finally:
        argparse.ArgumentParser.parse_args = real
    raise AssertionError(f"{module}.main never parsed arguments")


def _parsers(ap: argparse.ArgumentParser, name: str):
    yield name, ap
    for action in ap._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, sub_ap in action.choices.items():
                yield from _parsers(sub_ap, f"{name} {sub}")


COMMANDS = ["extract.__main__", "extract.synthetic", "train.cli", "train.synthetic", "evaluate.__main__",
            "evaluate.search", "cache.__main__", "bench.__main__", "predict.__main__"]


@pytest.mark.parametrize("module", COMMANDS)
def test_help_states_every_default_and_ends_with_examples(module):
    for name, ap in _parsers(_parser_of(module), module):
        for action in ap._actions:
            if not action.option_strings or action.dest == "help" or action.default is None \
                    or action.default is False or action.default == argparse.SUPPRESS:
                continue
            assert "default" in (action.help or ""), f"{name} {action.option_strings[0]}: default not stated"
        text = ap.format_help().rstrip().split("\n\nexamples:\n")
        assert len(text) == 2, f"{name}: --help does not end with examples"
        examples = text[1].splitlines()
        assert 2 <= len(examples) <= 5 and all(e.startswith("  python -m ") for e in examples), examples


def test_run_pipeline_help_states_the_model_fallback():
    proc = subprocess.run([os.path.join(ROOT, "run_pipeline.sh"), "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    assert "default: ViT-B/32, downloaded on first use; random:tiny when it cannot be had" in proc.stdout
    assert "--quiet" in proc.stdout and proc.stdout.rstrip().split("examples:\n")[1].count("run_pipeline.sh ") == 3
