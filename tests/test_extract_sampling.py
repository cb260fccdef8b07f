"""Pure sampling maths and header parsing: target times, nearest frames, CLIP geometry, strategy."""
import numpy as np
import pytest

from extract import sampling
from extract.probe import parse_header


def test_target_times_are_centred_and_inside():
    t = sampling.target_times(10.0, 100)
    assert t.shape == (100,)
    assert t[0] == pytest.approx(0.05) and t[-1] == pytest.approx(9.95)
    assert np.allclose(np.diff(t), 0.1)


def test_nearest_rows_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(50):
        frames = np.sort(rng.uniform(0, 10, rng.integers(1, 40)))
        targets = rng.uniform(-1, 11, 30)
        got = sampling.nearest_rows(frames, targets)
        want = [int(np.argmin(np.abs(frames - x))) for x in targets]
        assert np.allclose(np.abs(frames[got] - targets), np.abs(frames[want] - targets))


def test_short_video_repeats_nearest_frames():
    frames = np.arange(30) / 3.0          # 30 frames over 10 s
    rows = sampling.nearest_rows(frames, sampling.target_times(10.0, 100))
    assert len(rows) == 100 and sampling.count_distinct(rows) == 30
    assert (np.diff(rows) >= 0).all()


@pytest.mark.parametrize("w,h,expect", [
    (340, 256, (297, 224, 36, 0)),
    (1920, 1080, (398, 224, 87, 0)),
    (240, 426, (224, 397, 0, 86)),
    (224, 224, (224, 224, 0, 0)),
])
def test_clip_geometry_matches_torchvision(w, h, expect):
    from PIL import Image
    import clip
    g = sampling.clip_geometry(w, h)
    assert (g.width, g.height, g.crop_x, g.crop_y) == expect
    # torchvision's own Resize on a PIL image of that size gives the same resized size.
    resized = clip.clip._transform(224).transforms[0](Image.new("RGB", (w, h)))
    assert resized.size == (g.width, g.height)


def test_rotation_swaps_size():
    assert sampling.displayed_size(1920, 1080, -90.0) == (1080, 1920)
    assert sampling.displayed_size(1920, 1080, 180.0) == (1920, 1080)


def test_strategy_seeks_only_long_dense_videos():
    assert sampling.choose_strategy(10.0, 30.0, 100) == "pass"
    assert sampling.choose_strategy(600.0, 30.0, 100) == "seek"
    assert sampling.choose_strategy(600.0, 2.0, 100) == "pass"


HEADER = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mp4':
  Duration: 00:01:02.50, start: 0.000000, bitrate: 508 kb/s
  Stream #0:0[0x1](und): Audio: aac (LC), 44100 Hz, stereo, fltp, 128 kb/s (default)
  Stream #0:1[0x2](eng): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 1280x720 [SAR 1:1 DAR 16:9], 2000 kb/s, 29.97 fps, 29.97 tbr, 30k tbn (default)
    Side data:
      displaymatrix: rotation of -90.00 degrees
"""


def test_parse_header():
    info = parse_header(HEADER)
    assert info.duration == pytest.approx(62.5)
    assert (info.width, info.height) == (1280, 720)
    assert info.fps == pytest.approx(29.97)
    assert info.rotation == pytest.approx(-90.0)


def test_parse_header_without_video():
    assert parse_header(HEADER.split("  Stream #0:1")[0]) is None
