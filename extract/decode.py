"""Sample N frames of a video: PyAV for every file it can read, the ffmpeg command line for the rest."""
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from extract.facts import Deadline, VideoError, check_file, describe_failure
from extract.fallback import sample_cli
from extract.frames import Sample
from extract.geometry import CLIP, Geometry
from extract.video import PyAVFailed, sample_pyav

Result = Union[Sample, VideoError]


def sample_video(path: str, n: int, threads: int = 1, timeout: float = 300.0, strategy: Optional[str] = None,
                 geometries: Sequence[Geometry] = (CLIP,)) -> Sample:
    """n rows at evenly spaced times, the nearest source frame for each, converted once per geometry
    (one decode feeds every backbone); raises VideoError. `strategy` ('pass' or 'seek') overrides
    the choice, `timeout` (s) bounds all of the work on this video."""
    check_file(path)
    deadline = Deadline(timeout)
    unique = list(dict.fromkeys(geometries))
    try:
        return sample_pyav(path, n, unique, threads, deadline, strategy)
    except PyAVFailed as exc:
        return sample_cli(path, n, unique, deadline, str(exc))


def iter_samples(paths: Iterable[str], n: int, threads: int = 1, timeout: float = 300.0,
                 geometries: Sequence[Geometry] = (CLIP,)) -> Iterator[Tuple[int, Result]]:
    """(index, Sample or the VideoError that stopped it) for every path, one video at a time
    (memory); whatever goes wrong with one video (any exception) is that video's VideoError alone."""
    for i, path in enumerate(paths):
        try:
            yield i, sample_video(path, n, threads, timeout, geometries=geometries)
        except Exception as exc:
            yield i, describe_failure(exc)


def sample_videos(paths: List[str], n: int, threads: int = 1, timeout: float = 300.0) -> List[Result]:
    """Every path's Sample, or the VideoError that stopped it, in the order of `paths`."""
    return [r for _, r in iter_samples(paths, n, threads, timeout)]
