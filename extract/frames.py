"""The frames one decode picks, converted once per backbone geometry, and the Sample they make."""
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from extract.convert import Converter, display_matrix, displayed_size, orientation, rotation_of
from extract.facts import VideoError, VideoInfo
from extract.geometry import Geometry


@dataclass
class Sample:
    """N rows sampled from one video; rows that show the same source frame share one picture."""
    pictures: Dict[Geometry, np.ndarray]   # per geometry [D, S, S, 3] uint8 RGB, each source frame
                                           # once (a view of planar [D, 3, S, S] memory, as models read)
    rows: np.ndarray      # [N] int64, which picture each row shows (non-decreasing)
    t: np.ndarray         # [N] float32, timestamp (s, from the container's start) of each row's frame
    n_distinct: int       # D: how many different source frames the rows use
    info: VideoInfo
    strategy: str         # 'pass' or 'seek'
    decoder: str          # 'pyav', or 'ffmpeg' (the command line, for files PyAV cannot read)
    note: str = ""        # why the duration is not the header's, or why PyAV could not read the file

    @property
    def distinct(self) -> np.ndarray:
        """[D, S, S, 3] the pictures of the first geometry asked for."""
        return next(iter(self.pictures.values()))

    def frames_for(self, geo: Geometry) -> np.ndarray:
        """[N, S, S, 3] every row's picture at `geo` (a copy when rows repeat a frame)."""
        pics = self.pictures[geo]
        if len(pics) == len(self.rows):
            return pics
        return pics.transpose(0, 3, 1, 2)[self.rows].transpose(0, 2, 3, 1)   # gather the planar memory

    @property
    def frames(self) -> np.ndarray:
        return self.frames_for(next(iter(self.pictures)))


class Collector:
    """Takes the (time, (frame number, picture)) picks of a Picker, target by target, and keeps each
    picked picture once, converted to every geometry as it is picked (memory: N pictures per geometry)
    on `threads` threads."""

    def __init__(self, n: int, geometries: Sequence[Geometry], rotate: bool = True, threads: int = 1):
        self.geometries, self.rotate, self.threads = list(geometries), rotate, threads
        self.bufs = [np.empty((n, 3, g.size, g.size), np.uint8) for g in self.geometries]   # [N, 3, S, S]
        self.converters: List[Converter] = []
        self.rows: List[int] = []
        self.times: List[float] = []
        self.count, self.last = 0, None
        self.shown: Tuple[int, int, float] = (0, 0, 0.0)     # displayed width, height; rotation

    def _start(self, frame) -> None:
        matrix = display_matrix(frame) if self.rotate else None
        turns = orientation(matrix)
        self.converters = [Converter(g, turns, self.threads) for g in self.geometries]
        self.shown = (*displayed_size(frame.width, frame.height, turns), rotation_of(matrix))

    def take(self, picks: List[Tuple[float, Tuple[int, object]]]) -> None:
        for t, (number, frame) in picks:
            if number != self.last:
                if not self.converters:
                    self._start(frame)
                for convert, buf in zip(self.converters, self.bufs):
                    convert(frame, buf[self.count])
                self.count, self.last = self.count + 1, number
            self.rows.append(self.count - 1)
            self.times.append(t)

    def sample(self, duration: float, fps: float, strategy: str, decoder: str, note: str = "") -> Sample:
        if not self.count:
            raise VideoError("no frames could be decoded")
        w, h, rotation = self.shown
        pictures = {g: b[:self.count].transpose(0, 2, 3, 1) for g, b in zip(self.geometries, self.bufs)}
        return Sample(pictures, np.asarray(self.rows, np.int64), np.asarray(self.times, np.float32), self.count,
                      VideoInfo(float(duration), float(fps), w, h, rotation), strategy, decoder, note)
