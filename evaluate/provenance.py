"""What produced a report: package versions, the project's git commit and the runs' exact command lines."""
import os
import subprocess
from importlib import metadata
from typing import Dict, List, Optional

# (shown name, distribution names to try): clip ships as clip-anytorch or as OpenAI's clip
PACKAGES = (("torch", ("torch",)), ("clip", ("clip-anytorch", "clip", "openai-clip")), ("h5py", ("h5py",)),
            ("dask", ("dask",)), ("scikit-learn", ("scikit-learn",)), ("numpy", ("numpy",)))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def package_versions() -> Dict[str, Optional[str]]:
    """Installed version of each package the numbers depend on (None when not installed)."""
    out: Dict[str, Optional[str]] = {}
    for shown, dists in PACKAGES:
        out[shown] = None
        for dist in dists:
            try:
                out[shown] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def git_commit(root: str = ROOT) -> Optional[str]:
    """The checkout's commit, with '+changes' when files differ from it; None outside a git checkout."""
    def git(*args: str) -> Optional[str]:
        try:
            done = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None
    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def run_commands(runs: List[object]) -> List[Dict[str, str]]:
    """[{run, command}] for every run whose metrics.json recorded the command line that made it."""
    return [{"run": r.name, "command": str(r.metrics["command"])} for r in runs
            if isinstance(getattr(r, "metrics", {}).get("command"), str) and r.metrics["command"]]
