"""clipvid as its users run it: from their own folder with relative paths, and as a user who is not root."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from clipvid.errors import EXIT_DATA
from conftest import ROOT

pytestmark = pytest.mark.slow


def _env(**extra) -> dict:
    """The caller's environment, with the set-up told to use this interpreter (no .venv is built)."""
    env = dict(os.environ, CLIPVID_PY=sys.executable, CLIPVID_PER_CLASS="3", **extra)
    env.pop("PYTHONPATH", None)     # run_pipeline.sh itself points Python at its checkout
    return env


def test_pipeline_from_another_folder_with_relative_paths(tmp_path):
    """`~/clipvid/run_pipeline.sh vids/ --out out/` from the folder holding vids/: every path is the
    caller's, the predict step still runs (no GNU-only tool hides its failure), and a train/ package of
    the caller's (a dataset's split folder) does not shadow clipvid's."""
    work = tmp_path / "mine"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "extract.synthetic", "vids", "--per-class", "3", "--quiet"], cwd=work,
                   env=dict(os.environ, PYTHONPATH=ROOT), check=True, capture_output=True, timeout=600)
    (work / "train").mkdir()
    (work / "train" / "__init__.py").write_text("raise SystemExit('the caller folder shadowed clipvid')\n")
    before = set(os.listdir(ROOT))
    proc = subprocess.run([os.path.join(ROOT, "run_pipeline.sh"), "vids/", "--out", "out/", "--clip-model",
                           "random:tiny", "--frames", "4", "--heads", "meanpool,linear", "--epochs", "1", "--quiet"],
                          cwd=work, env=_env(), capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "shadowed" not in proc.stderr
    caches = glob.glob(str(work / "out" / "cache" / "vids-random_tiny-N4.h5"))
    assert caches, os.listdir(work / "out")
    report = re.search(r"^report: (.+)$", proc.stdout, re.M)
    page = re.search(r"^predictions: (.+)$", proc.stdout, re.M)
    assert report and report.group(1).startswith(str(work / "out")) and os.path.isfile(report.group(1))
    assert page and page.group(1).startswith(str(work / "out")) and os.path.isfile(page.group(1)), proc.stdout
    assert set(os.listdir(ROOT)) == before          # nothing landed in the checkout


def test_a_bad_relative_source_is_named_as_the_caller_wrote_it(tmp_path):
    proc = subprocess.run([os.path.join(ROOT, "run_pipeline.sh"), "nowhere/", "--out", "out/", "--clip-model",
                           "random:tiny"], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == EXIT_DATA and "error: nowhere/: no such file or folder" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture
def plain_user():
    """A user who is not root, made for this test and removed after it."""
    if os.geteuid() != 0:
        pytest.skip("not root: cannot create a user to run as (run as root to test the non-root path)")
    if not shutil.which("useradd"):
        pytest.skip("no useradd here: cannot create a user to run as")
    name = f"cvtest{os.getpid()}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name], check=True, capture_output=True)
    import pwd
    entry = pwd.getpwnam(name)
    home = tempfile.mkdtemp(prefix="clipvid-user-")
    os.chmod(home, 0o700)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    try:
        yield entry, home
    finally:
        subprocess.run(["userdel", name], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def _python_for(entry, home: str) -> tuple:
    """(interpreter, PYTHONPATH) with which `entry` runs this checkout's code on this environment's
    packages. The code is copied into the user's home (the checkout may lie where the user cannot go);
    the interpreter is this one, or one of the same version when this one cannot be run by the user
    (a pyenv under /root)."""
    import sysconfig
    src = os.path.join(home, "clipvid-src")
    for package in ("cache", "clipvid", "evaluate", "extract", "predict", "train"):
        shutil.copytree(os.path.join(ROOT, package), os.path.join(src, package),
                        ignore=shutil.ignore_patterns("__pycache__"))
    for folder, dirs, files in os.walk(home):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), entry.pw_uid, entry.pw_gid)
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    path = f"{src}:{sysconfig.get_paths()['purelib']}"
    for python in (sys.executable, shutil.which(f"python{version}"), f"/usr/bin/python{version}"):
        if not python or not os.path.exists(python):
            continue
        try:
            proc = subprocess.run([python, "-c", "import sys, torch, h5py, dask.distributed, clip, av; "
                                   "print('%d.%d' % sys.version_info[:2])"], env={"PYTHONPATH": path},
                                  user=entry.pw_uid, group=entry.pw_gid, extra_groups=[], capture_output=True,
                                  text=True, timeout=300)
        except PermissionError:   # the interpreter lies where the user cannot go
            continue
        if proc.returncode == 0 and proc.stdout.strip() == version:
            return python, path
    pytest.skip(f"no Python {version} with this environment's packages that a user who is not root may run "
                f"(this one: {sys.executable}; its packages must be readable by other users)")


def test_extract_train_predict_as_a_user_who_is_not_root(plain_user):
    """A real local Dask cluster (TLS), ffmpeg decoding, training and prediction, with no root rights:
    every file written is the user's, in the user's folders."""
    entry, home = plain_user
    python, path = _python_for(entry, home)
    env = {"HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": path, "LANG": "C.UTF-8"}

    def as_user(*args):
        proc = subprocess.run([python, "-m", *args], cwd=home, env=env, user=entry.pw_uid,
                              group=entry.pw_gid, extra_groups=[], capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
        return proc

    as_user("extract.synthetic", "vids", "--per-class", "3", "--quiet")
    extracted = as_user("extract", "vids", "--out", "c/cache.h5", "--clip-model", "random:tiny", "--frames", "4",
                        "--workers", "2", "--device", "cpu")
    assert "extract: computing on cpu in fp32" in extracted.stderr
    as_user("train", "c/cache.h5", "--head", "meanpool,linear", "--epochs", "1", "--out", "runs", "--quiet")
    run = sorted(glob.glob(os.path.join(home, "runs", "linear-*", "seed0")))[0]
    as_user("predict", "c/cache.h5", "--run", run, "--out", "pred", "--quiet")
    assert os.path.getsize(os.path.join(home, "pred", "predictions.csv")) > 0
    for folder, _, files in os.walk(home):   # outputs, the random weights in ~/.cache, the copied code
        for name in files:
            assert os.stat(os.path.join(folder, name)).st_uid == entry.pw_uid, name


def test_no_module_defaults_to_a_folder_of_the_build_machine():
    """Benchmarks and commands work from any checkout: no path of the machine they were written on."""
    found = []
    for path in glob.glob(os.path.join(ROOT, "*", "*.py")):
        if "/tests/" in path or "/.venv/" in path:
            continue
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if re.search(r"[\"']/work/|/work/tmp|/root/", line):
                    found.append(f"{os.path.relpath(path, ROOT)}:{n}: {line.strip()}")
    assert found == []
