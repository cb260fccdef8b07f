"""One decode feeds several backbones: the frames are picked once and converted once per geometry."""
import numpy as np

from extract.decode import sample_video
from extract.geometry import CLIP, Geometry
from tests.helpers_video import make_video


def test_one_decode_gives_each_geometry_what_a_decode_for_it_alone_gives(tmp_path):
    path = make_video(tmp_path / "wide.mp4", seconds=2, fps=10, size="320x180")
    squash = Geometry(96, "squash", "bilinear")
    both = sample_video(path, 6, geometries=[CLIP, squash, CLIP])           # (a repeat counts once)
    assert list(both.pictures) == [CLIP, squash]
    assert both.pictures[CLIP].shape == (both.n_distinct, 224, 224, 3)
    assert both.frames_for(squash).shape == (6, 96, 96, 3)
    for geo in (CLIP, squash):
        alone = sample_video(path, 6, geometries=[geo])
        assert np.array_equal(alone.t, both.t) and np.array_equal(alone.rows, both.rows)
        assert np.array_equal(alone.frames_for(geo), both.frames_for(geo))
    assert np.array_equal(both.frames, both.frames_for(CLIP))                    # frames: the first geometry
    assert both.pictures[CLIP].transpose(0, 3, 1, 2).flags.c_contiguous          # planar [D, 3, S, S] memory


def test_frame_threads_and_skipped_frames_change_no_picture(tmp_path):
    """One thread skips non-reference B-frames that no target needs; several threads decode every
    frame in parallel: both give the same rows, times and pictures."""
    path = make_video(tmp_path / "bframes.mp4", seconds=3, fps=25, extra=("-bf", "3", "-g", "50"))
    one, three = sample_video(path, 7, threads=1), sample_video(path, 7, threads=3)
    assert np.array_equal(one.t, three.t) and np.array_equal(one.frames, three.frames)
    assert one.n_distinct == 7
