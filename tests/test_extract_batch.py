"""Short videos sampled together in one ffmpeg run give exactly what each gives alone."""
import os

import numpy as np
import pytest

from extract import batch
from extract.decode import sample_video
from extract.probe import VideoError, VideoInfo
from tests.helpers_video import counting_ffmpeg, ffmpeg, make_video

N = 40


def _alone(path: str):
    try:
        return sample_video(path, N)
    except VideoError as exc:
        return exc


@pytest.fixture(scope="module")
def mixed(real_videos, tmp_path_factory):
    """Real clips and generated ones, with broken and odd files between them."""
    root = tmp_path_factory.mktemp("batch")
    paths = list(real_videos)
    paths.append(make_video(root / "ten_frames.mp4", seconds=1, fps=10))
    paths.append(make_video(root / "wide.mp4", seconds=1, fps=10, size="1000x20"))
    rotated = make_video(root / "upright.mp4", seconds=1, fps=25, size="96x64")
    ffmpeg("-display_rotation", "90", "-i", rotated, "-c", "copy", os.fspath(root / "rotated.mp4"))
    paths.append(os.fspath(root / "rotated.mp4"))
    # The picture stops at 1 s while the audio runs to 4 s: sampled over the pictured second.
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1", "-f", "lavfi", "-i",
           "sine=duration=4", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", os.fspath(root / "stops.mp4"))
    paths.append(os.fspath(root / "stops.mp4"))
    # A valid header in front, then only part of the pictures: the run must not lose the others.
    whole = make_video(root / "whole.mp4", seconds=4, fps=25, extra=("-movflags", "+faststart"))
    data = open(whole, "rb").read()
    open(root / "cut.mp4", "wb").write(data[: len(data) * 2 // 3])
    paths.append(os.fspath(root / "cut.mp4"))
    # A valid header and garbage where most pictures should be: decoding errors mid-run.
    garbage = bytearray(data)
    garbage[len(data) // 3:] = np.random.default_rng(1).bytes(len(data) - len(data) // 3)
    open(root / "garbage.mp4", "wb").write(bytes(garbage))
    paths.append(os.fspath(root / "garbage.mp4"))
    open(root / "empty.mp4", "wb").close()
    paths.append(os.fspath(root / "empty.mp4"))
    paths.append(make_video(root / "last.mp4", seconds=2, fps=12))
    return paths


@pytest.mark.slow
def test_batch_equals_each_video_alone(mixed):
    together = batch.sample_videos(mixed, N)
    assert len(together) == len(mixed)
    for path, got in zip(mixed, together):
        want = _alone(path)
        name = os.path.basename(path)
        if isinstance(want, Exception):
            assert isinstance(got, VideoError) and str(got) == str(want), (name, got, want)
            continue
        assert not isinstance(got, Exception), (name, got)
        assert got.frames.shape == want.frames.shape == (N, 224, 224, 3), name
        assert np.array_equal(got.frames, want.frames), name
        assert np.array_equal(got.t, want.t), name
        assert got.n_distinct == want.n_distinct and got.info == want.info, name
    names = {os.path.basename(p): r for p, r in zip(mixed, together)}
    assert isinstance(names["empty.mp4"], VideoError)
    assert names["stops.mp4"].t.max() < 1.0 and names["ten_frames.mp4"].n_distinct == 10
    assert names["rotated.mp4"].info.rotation in (90.0, -90.0, 270.0)


@pytest.mark.slow
def test_iter_samples_yields_every_index_once(mixed):
    seen = [i for i, _ in batch.iter_samples(mixed, 8)]
    assert sorted(seen) == list(range(len(mixed)))


def test_short_videos_share_one_ffmpeg_run(tmp_path, monkeypatch):
    """Counted through a wrapper that logs each real ffmpeg start, then runs it."""
    clips = [make_video(tmp_path / f"c{i}.mp4", seconds=1 + i % 3, fps=12, size="96x72") for i in range(6)]
    alone = [sample_video(c, N) for c in clips]
    runs = {}
    with counting_ffmpeg(tmp_path, monkeypatch) as started:
        # MP4s go to the in-process decoder (no process at all); with it off, to one shared run.
        for inproc in ("1", "0"):
            monkeypatch.setenv("CLIPVID_INPROC", inproc)
            runs[inproc] = batch.sample_videos(clips, N), started()
    assert runs["1"][1] == 0 and runs["0"][1] == 1    # six videos: none, or one process
    for together, _ in runs.values():
        for a, b in zip(alone, together):
            assert np.array_equal(a.frames, b.frames) and np.array_equal(a.t, b.t)


def test_group_limits():
    plan = lambda pixels: batch.Plan("x", VideoInfo(1.0, 1.0, int(pixels), 1, 0.0), None, "pass")
    groups = batch.group([plan(1e8)] * 20)
    assert [len(g) for g in groups] == [8, 8, 4]
    groups = batch.group([plan(batch.MAX_BATCH_PIXELS / 2 + 1)] * 3)
    assert [len(g) for g in groups] == [1, 1, 1]
    assert not batch.batchable(plan(batch.MAX_VIDEO_PIXELS * 2))
    assert not batch.batchable(batch.Plan("x", VideoInfo(1.0, 1.0, 10, 10, 0.0), None, "seek"))


def test_repeated_frames_are_kept_and_embedded_once(tmp_path):
    import torch
    from extract.clip_model import encode_frames, load_clip
    from extract.worker_tasks import embed_sample
    s = sample_video(make_video(tmp_path / "ten.mp4", seconds=1, fps=10), N)
    assert s.distinct.shape == (10, 224, 224, 3) and s.n_distinct == 10 and s.rows.shape == (N,)
    assert np.all(np.diff(s.rows) >= 0) and s.frames.shape == (N, 224, 224, 3)
    assert np.array_equal(s.frames, s.distinct[s.rows])
    model = load_clip("random:tiny", torch.device("cpu"))
    once, every = embed_sample(model, s, 100), encode_frames(model, s.frames, 100)   # [N, D] each
    assert once.shape == every.shape == (N, model.dim)
    assert np.allclose(once.astype(np.float32), every.astype(np.float32), atol=2e-3)
    assert np.array_equal(once[s.rows == 3][0], once[s.rows == 3][-1])   # repeated rows: one embedding


def test_chunks_cover_every_file_once_shrink_at_the_end_and_leave_big_files_alone(tmp_path):
    from types import SimpleNamespace
    from extract.pipeline import MAX_CHUNK, SMALL_FILE, chunk_items
    small, big = tmp_path / "small.mp4", tmp_path / "big.mp4"
    small.write_bytes(b"x")
    with open(big, "wb") as f:
        f.truncate(SMALL_FILE + 1)           # sparse: big by size, nothing on disk
    items = [SimpleNamespace(id=i, path=os.fspath(big if i == 50 else small)) for i in range(200)]
    items.append(SimpleNamespace(id=200, path=os.fspath(tmp_path / "missing.mp4")))
    chunks = chunk_items(items, 2)
    assert sorted(it.id for c in chunks for it in c) == list(range(201))
    sizes = [len(c) for c in chunks]
    assert max(sizes) == MAX_CHUNK and sizes[-1] == 1 and sizes[-8:] == [1] * 8
    assert [it.id for it in next(c for c in chunks if any(it.id == 50 for it in c))] == [50]
    assert chunks[-1][0].id == 200
