"""The set-up and pipeline scripts use only what GNU and BSD (macOS) userlands and macOS's bash 3.2 share."""
import os
import re
import subprocess

import pytest

from conftest import ROOT

# The scripts a user runs or sources on their own machine (.ci/run is CI's, on Debian).
SCRIPTS = ["run_pipeline.sh", "run_tests.sh", "scripts/ensure_env.sh", "extract/worker_python.sh"]

# (pattern, why): each is missing, or means something else, on macOS.
GNU_ONLY = [
    (r"\b(sha1sum|sha256sum|md5sum)\b", "GNU coreutils hashing (macOS has shasum/md5): use cksum"),
    (r"\bstat\s+(-c|--)", "GNU stat flags (BSD stat takes -f)"),
    (r"\bfind\b[^|;]*\s-(printf|regextype|readable)\b", "GNU find predicates"),
    (r"\bsort\b[^|;]*\s-[a-zA-Z]*V", "sort -V (version sort) is GNU"),
    (r"\breadlink\s+-[a-zA-Z]*[fem]", "readlink -f/-e/-m (old macOS lacks them)"),
    (r"\brealpath\b", "realpath (old macOS lacks it)"),
    (r"\bsed\s+(-[a-zA-Z]*\s+)*-i\b", "sed -i differs between GNU and BSD"),
    (r"\bsed\s+-r\b", "sed -r is GNU (use -E)"),
    (r"\bgrep\s+(-[a-zA-Z]*\s+)*-[a-zA-Z]*P", "grep -P (Perl regexps) is GNU"),
    (r"\bxargs\s+(-[a-zA-Z]*\s+)*-[a-zA-Z]*r\b", "xargs -r is GNU"),
    (r"\bdate\s+(-[a-zA-Z]*\s+)*-d\b", "date -d is GNU"),
    (r"\b(timeout|nproc|tac|numfmt)\b\s", "GNU coreutils only"),
    (r"\bdu\s+(-[a-zA-Z]*\s+)*-[a-zA-Z]*b", "du -b is GNU"),
    (r"\becho\s+-e\b", "echo -e is not portable (use printf)"),
    (r"\b(mapfile|readarray|coproc)\b", "bash 4 (macOS ships bash 3.2)"),
    (r"\bdeclare\s+-[a-zA-Z]*A", "associative arrays need bash 4"),
    (r"\$\{[A-Za-z_][A-Za-z_0-9]*(,,|\^\^)", "case conversion needs bash 4"),
    (r"&>>|\|&", "bash 4 redirections"),
]


def code_lines(text: str):
    """(number, line) of the lines that are code: comment lines and heredoc bodies left out."""
    heredoc = None
    for number, line in enumerate(text.splitlines(), 1):
        if heredoc:
            if line.strip() == heredoc:
                heredoc = None
            continue
        if line.lstrip().startswith("#"):
            continue
        code = re.sub(r"\s#\s.*$", "", line)
        found = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", code)
        if found:
            heredoc = found.group(1)
        yield number, code


def gnu_only(text: str):
    """'line N: why' for every GNU- or bash-4-only construct in a script."""
    return [f"line {n}: {why}: {line.strip()}" for n, line in code_lines(text)
            for pattern, why in GNU_ONLY if re.search(pattern, line)]


def test_the_check_catches_what_broke_on_macos():
    bad = ("STAMP=$(cat x | sha1sum | cut -c1-12)\n"
           "S=\"$(stat -c '%s-%Y' \"$C\")\"\n"
           "find \"$R\" -maxdepth 2 -name split.json -printf '%h\\n' | sort -V | head -n 1\n"
           "mapfile -t A < f\n")
    found = gnu_only(bad)
    assert len(found) == 5, found
    assert not gnu_only("# sha1sum in a comment\ncat <<'EOT'\nstat -c in a heredoc body\nEOT\necho ok | cksum\n")


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_use_no_gnu_only_flags(script):
    with open(os.path.join(ROOT, script), encoding="utf-8") as f:
        text = f.read()
    assert gnu_only(text) == [], f"{script}: not portable to macOS/BSD"


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_parse(script):
    proc = subprocess.run(["bash", "-n", os.path.join(ROOT, script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _python_check(python: str) -> subprocess.CompletedProcess:
    """ensure_env.sh's Python check, sourced up to its functions, run on `python`."""
    script = os.path.join(ROOT, "scripts", "ensure_env.sh")
    text = open(script, encoding="utf-8").read()
    head = "NEED_PYTHON=" + text.split("\nNEED_PYTHON=")[1].split("\n# The stamp")[0]
    return subprocess.run(["bash", "-c", head + "\npick_python"], capture_output=True, text=True,
                          env=dict(os.environ, CLIPVID_PYTHON=python))


def test_setup_says_in_one_line_which_python_it_needs(tmp_path):
    """A Python too old (3.9 on a stock Mac) is refused with one line naming the version and why."""
    old = tmp_path / "python3.9"
    old.write_text("#!/bin/sh\nexit 1\n")     # answers the version check as a Python 3.9 would
    old.chmod(0o755)
    proc = _python_check(str(old))
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Python 3.10 or newer" in err and "torch" in err
    import sys
    ok = _python_check(sys.executable)
    assert ok.returncode == 0 and ok.stdout.strip() == sys.executable


@pytest.mark.slow
def test_setup_rebuilds_a_venv_left_half_made(tmp_path):
    """A .venv whose creation stopped half-way (no working python or pip) is built again, not reused."""
    import shutil
    import sys
    for name in ("scripts/ensure_env.sh", "requirements.txt", "pyproject.toml"):
        os.makedirs(tmp_path / os.path.dirname(name), exist_ok=True)
        shutil.copy(os.path.join(ROOT, name), tmp_path / name)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").write_text("#!/bin/sh\nexit 1\n")   # a broken interpreter
    (tmp_path / ".venv" / "bin" / "python").chmod(0o755)
    # No index: the install after the rebuild fails at once; the rebuild itself is what is checked.
    env = dict(os.environ, CLIPVID_PYTHON=sys.executable, PIP_NO_INDEX="1", PIP_FIND_LINKS="",
               PIP_CONFIG_FILE=os.devnull)
    proc = subprocess.run(["bash", "-c", f"source {tmp_path}/scripts/ensure_env.sh"], capture_output=True,
                          text=True, env=env, timeout=600)
    assert "is incomplete (an earlier set-up stopped half-way): building it again" in proc.stderr
    fresh = tmp_path / ".venv" / "bin" / "python"
    assert subprocess.run([str(fresh), "-m", "pip", "--version"], capture_output=True).returncode == 0
    assert proc.returncode != 0 and not list((tmp_path / ".venv").glob(".clipvid-*"))   # no stamp: retried next time
