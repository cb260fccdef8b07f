"""Our sampler as a pipeline worker runs it, and the bare decode it is measured against (the peer
decoders are in bench/peer_decoders.py)."""
import subprocess
from typing import List

from extract.ffmpeg_bin import ffmpeg_exe

N = 100


def ours_many(paths: List[str]) -> int:
    """All paths as a pipeline worker samples them, one after the other; each sample is dropped once
    made, as the worker drops it once embedded. Returns how many were sampled."""
    from extract.decode import iter_samples
    done = 0
    for _, sample in iter_samples(paths, N, threads=1):
        if isinstance(sample, Exception):
            raise sample
        done += 1
    return done


def bare_decode(path: str) -> None:
    """The decode limit: every frame decoded, nothing kept (one thread, as a pipeline worker runs)."""
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-threads", "1", "-i", path, "-f", "null", "-"],
                   capture_output=True, check=True)
