"""Turn a decoded picture into a backbone's input: the display matrix as ffmpeg applies it, then a Geometry."""
import math
from fractions import Fraction
from typing import List, Optional, Sequence, Tuple

import av
import numpy as np

from extract import geometry

_DEST = (1, 2, 0)    # gbrp planes hold G, B, R: where each goes in R, G, B order


def rotation_of(matrix: Optional[Sequence[int]]) -> float:
    """Counter-clockwise degrees of a 3x3 display matrix (9 int32, 16.16 fixed point), 0 for none."""
    if matrix is None:
        return 0.0
    sx, sy = math.hypot(matrix[0], matrix[3]), math.hypot(matrix[1], matrix[4])
    if sx == 0 or sy == 0:
        return 0.0
    return -math.degrees(math.atan2(matrix[1] / sy, matrix[0] / sx)) + 0.0


def orientation(matrix: Optional[Sequence[int]]) -> List[Tuple[str, str]]:
    """The filters that show a picture the way ffmpeg's command line does for this display matrix:
    the clockwise turn that undoes the rotation, with the matrix's flip (a mirrored quarter turn is
    one transpose, a mirror with no turn an hflip or vflip); other angles by `rotate`."""
    if matrix is None:
        return []
    theta = -round(rotation_of(matrix))
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)         # into [0, 360)
    if abs(theta - 90) < 1:
        return [("transpose", "cclock_flip" if matrix[3] > 0 else "clock")]
    if abs(theta - 270) < 1:
        return [("transpose", "clock_flip" if matrix[3] < 0 else "cclock")]
    if abs(theta - 180) < 1:
        return [f for f, mirrored in ((("hflip", ""), matrix[0] < 0), (("vflip", ""), matrix[4] < 0)) if mirrored]
    if abs(theta) < 1 or abs(theta - 360) < 1:
        return [("vflip", "")] if matrix[4] < 0 else []
    return [("rotate", f"{theta:f}*PI/180")]


def display_matrix(frame) -> Optional[List[int]]:
    """The frame's display matrix side data (the stream's, which the decoder attaches), or None."""
    data = frame.side_data.get(av.sidedata.sidedata.Type.DISPLAYMATRIX)
    return None if data is None else np.frombuffer(bytes(data), "<i4", 9).tolist()


def displayed_size(width: int, height: int, turns: List[Tuple[str, str]]) -> Tuple[int, int]:
    """A picture's size after the orientation filters (a transpose swaps the sides)."""
    return (height, width) if any(name == "transpose" for name, _ in turns) else (width, height)


class Converter:
    """Pictures -> one Geometry's planar RGB input [3, S, S] uint8, through one PyAV filter graph
    (rebuilt when the pictures' size or format changes mid-stream) on `threads` threads."""

    def __init__(self, geo: geometry.Geometry, turns: List[Tuple[str, str]], threads: int = 1):
        self.geo, self.turns, self.threads = geo, turns, threads
        self.graph, self.key = None, None

    def _build(self, frame) -> None:
        graph = av.filter.Graph()
        # The decode's thread budget, not libavfilter's default of one thread per core: every
        # worker's graph would start threads for all the cores the workers already share
        # (bench/PERFORMANCE.md, pipeline).
        graph.threads = self.threads
        nodes = [graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                                  time_base=frame.time_base or Fraction(1, 1000000))]
        w, h = displayed_size(frame.width, frame.height, self.turns)
        for name, args in self.turns + geometry.filters(w, h, self.geo):
            nodes.append(graph.add(name, args))
        nodes.append(graph.add("buffersink"))
        graph.link_nodes(*nodes).configure()
        self.graph, self.key = graph, (frame.width, frame.height, frame.format.name)

    def __call__(self, frame, out: np.ndarray) -> None:
        """Write `frame` converted into out [3, S, S] (R, G, B planes)."""
        if self.key != (frame.width, frame.height, frame.format.name):
            self._build(frame)
        self.graph.vpush(frame)
        planes = self.graph.vpull().planes
        s = self.geo.size
        for i, plane in zip(_DEST, planes[:3]):
            out[i] = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:s, :s]
