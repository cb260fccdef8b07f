"""Pure sampling maths: target times, the nearest frame per target, geometry, orientation, strategy;
and the shape of extract/ itself (no import circles, the decode stack's size)."""
import ast
import os

import numpy as np
import pytest

from extract import convert, geometry, sampling
from tests.helpers_video import nearest_rows

EXTRACT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "extract")


def test_target_times_are_centred_and_inside():
    t = sampling.target_times(10.0, 100)
    assert t.shape == (100,)
    assert t[0] == pytest.approx(0.05) and t[-1] == pytest.approx(9.95)
    assert np.allclose(np.diff(t), 0.1)


def test_picker_chooses_what_nearest_rows_chooses_over_every_frame():
    """Streaming frames through the Picker keeps the brute-force choice (ties: the earlier frame),
    also for frames that repeat a time or go back (skipped), and targets after the last frame."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        times = np.sort(rng.uniform(0, 10, rng.integers(1, 60)))
        if rng.random() < 0.3:
            times = np.round(times * 4) / 4                      # ties and repeated times
        targets = np.sort(rng.uniform(-1, 11, rng.integers(1, 30)))
        picker, got = sampling.Picker(targets), []
        for k, t in enumerate(times):
            got += [i for _, i in picker.push(float(t), k)]
        got += [i for _, i in picker.finish()]
        unique = np.unique(times, return_index=True)[1]        # the first frame of each time
        want = unique[nearest_rows(times[unique], targets)]
        assert got == want.tolist()


def test_short_video_repeats_nearest_frames():
    picker, rows = sampling.Picker(sampling.target_times(10.0, 100)), []
    for k, t in enumerate(np.arange(30) / 3.0):           # 30 frames over 10 s
        rows += [i for _, i in picker.push(float(t), k)]
    rows += [i for _, i in picker.finish()]
    assert len(rows) == 100 and len(np.unique(rows)) == 30
    assert (np.diff(rows) >= 0).all()


@pytest.mark.parametrize("w,h,expect", [
    (340, 256, (297, 224, 36, 0)),
    (1920, 1080, (398, 224, 87, 0)),
    (240, 426, (224, 397, 0, 86)),
    (224, 224, (224, 224, 0, 0)),
])
def test_crop_geometry_matches_torchvision(w, h, expect):
    from PIL import Image
    import clip
    p = geometry.place(w, h, geometry.CLIP)
    assert (p.width, p.height, p.crop_x, p.crop_y) == expect
    resized = clip.clip._transform(224).transforms[0](Image.new("RGB", (w, h)))
    assert resized.size == (p.width, p.height)


def test_squash_and_extreme_shapes():
    squash = geometry.Geometry(384, "squash")
    assert geometry.place(1920, 1080, squash) == geometry.Placement(0, 0, 384, 384, 0, 0)
    assert geometry.filters(1920, 1080, squash)[-1] == ("format", "gbrp")        # no crop after a squash
    p = geometry.place(10000, 10, geometry.CLIP)                   # a sliver: its centre 4:1 first
    assert (p.pre_width, p.pre_height) == (40, 10) and (p.width, p.height) == (896, 224)
    with pytest.raises(ValueError):
        geometry.Geometry(224, "stretch")


def _matrix(a, b, c, d):
    return [a << 16, b << 16, 0, c << 16, d << 16, 0, 0, 0, 1 << 30]


@pytest.mark.parametrize("m,turns,rotation", [
    (None, [], 0.0),
    (_matrix(1, 0, 0, 1), [], 0.0),
    (_matrix(0, -1, 1, 0), [("transpose", "cclock")], 90.0),           # -display_rotation 90
    (_matrix(0, 1, -1, 0), [("transpose", "clock")], -90.0),
    (_matrix(-1, 0, 0, -1), [("hflip", ""), ("vflip", "")], 180.0),
    (_matrix(-1, 0, 0, 1), [("hflip", "")], 180.0),                     # mirrored
    (_matrix(1, 0, 0, -1), [("vflip", "")], 0.0),                       # upside down
    (_matrix(0, -1, -1, 0), [("transpose", "clock_flip")], 90.0),       # -display_rotation 90 -display_hflip
    (_matrix(0, 1, 1, 0), [("transpose", "cclock_flip")], -90.0),
])
def test_display_matrix_becomes_ffmpegs_filters(m, turns, rotation):
    assert convert.orientation(m) == turns
    assert abs(convert.rotation_of(m)) == pytest.approx(abs(rotation))
    turned = bool(turns) and turns[0][0] == "transpose"
    assert convert.displayed_size(160, 120, turns) == ((120, 160) if turned else (160, 120))


def test_strategy_seeks_only_long_dense_videos():
    assert sampling.choose_strategy(10.0, 30.0, 100) == "pass"
    assert sampling.choose_strategy(600.0, 30.0, 100) == "seek"
    assert sampling.choose_strategy(600.0, 2.0, 100) == "pass"
    every_frame = np.arange(600 * 30)                          # all-intra: a seek decodes one frame
    assert sampling.choose_strategy(600.0, 30.0, 100, every_frame) == "seek"
    assert sampling.choose_strategy(600.0, 30.0, 100, np.array([0])) == "pass"   # one keyframe
    assert sampling.choose_strategy(90.0, 30.0, 100, np.arange(0, 2700, 30)) == "seek"    # bench's long_dense


def test_seek_frames_follow_the_decoder():
    """Keyframes every 10 frames, targets every 20: each target seeks to its keyframe and decodes
    to it; targets every 5 frames with one keyframe: one seek, then onwards."""
    frames, seeks = sampling.seek_frames(10.0, 10.0, 5, np.arange(0, 100, 10))  # targets 10, 30, ..., 90
    assert (frames, seeks) == (5 * 11, 5)               # from the keyframe before the frame ahead of each target
    frames, seeks = sampling.seek_frames(10.0, 10.0, 20, np.array([0]))         # targets 2, 7, ..., 97
    assert (frames, seeks) == (98, 1)


def _imports(path: str, package: str):
    """The extract modules a module imports, at any depth of its code (function bodies too)."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == package:
            if node.module == package:
                found |= {f"{package}.{a.name}" for a in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == package}
    return found


def test_extract_has_no_import_circles():
    graph = {f"extract.{f[:-3]}": _imports(os.path.join(EXTRACT, f), "extract")
             for f in os.listdir(EXTRACT) if f.endswith(".py")}
    state = {}

    def visit(mod, path):
        state[mod] = "open"
        for dep in sorted(graph.get(mod, ())):
            assert state.get(dep) != "open", "import circle: " + " -> ".join(path + [dep])
            if dep not in state:
                visit(dep, path + [dep])
        state[mod] = "done"
    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [mod])
    assert "extract.frames" in graph["extract.decode"] | graph["extract.video"]   # the walk sees real edges


# Everything between a video path and its sampled uint8 frames (issue 23: at most 800 lines).
DECODE_STACK = ("decode", "video", "fallback", "frames", "convert", "geometry", "sampling", "facts", "ffmpeg_bin")


def test_the_decode_stack_stays_small():
    lines = sum(len(open(os.path.join(EXTRACT, f"{m}.py")).read().splitlines()) for m in DECODE_STACK)
    assert lines <= 800, lines
