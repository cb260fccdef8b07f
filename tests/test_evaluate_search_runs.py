"""Search over a trained head's saved video embeddings: memory-mapped when they match, re-embedded when not."""
import json
import os

import numpy as np
import pytest

from cache import CacheWriter
from conftest import head_run
from clipvid.errors import EXIT_DATA, EXIT_OK
from evaluate.search import main
from test_evaluate_search import QUERY, call, parse_rows
from test_evaluate_support import clustered_videos, make_cache, tiny_clip_hash, unit
from train.cli import main as train_main
from train.outputs import VIDEO_EMB_META, ids_digest

FRAMES = 4


@pytest.fixture
def trained(tmp_path, capsys):
    weights_hash, dim = tiny_clip_hash()
    rng = np.random.default_rng(7)
    names = ["a", "b"]
    text = unit(rng.normal(size=(2, dim)))
    videos = clustered_videos(text, names, 8, FRAMES, splits=["train", "train", "val", "test"])
    path = make_cache(str(tmp_path / "c.h5"), names, text, videos, weights_hash=weights_hash, frames=FRAMES)
    assert train_main([path, "--head", "meanpool", "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    capsys.readouterr()
    return {"cache": path, "run": head_run(tmp_path / "runs", "meanpool"), "dim": dim, "text": text, "names": names}


def _query_emb():
    import torch
    from extract.clip_model import encode_texts, load_clip
    return encode_texts(load_clip("random:tiny", torch.device("cpu")), [QUERY])[0]


def test_training_saves_ids_and_fingerprint(trained):
    from cache.reader import open_cache
    meta = json.load(open(os.path.join(trained["run"], VIDEO_EMB_META)))
    with open_cache(trained["cache"]) as r:
        assert meta["rows"] == r.num_videos == 16 and meta["cache_fingerprint"] == r.fingerprint
        assert meta["ids_sha256"] == ids_digest(r.ids)
        assert json.load(open(os.path.join(trained["run"], "video_ids.json"))) == list(r.ids)
    assert np.load(os.path.join(trained["run"], "video_emb.npy"), mmap_mode="r").shape == (16, trained["dim"])


def test_search_maps_the_saved_embeddings_and_refreshes_stale_ones(trained, capsys):
    emb_path = os.path.join(trained["run"], "video_emb.npy")
    saved = np.load(emb_path)
    saved[11] = _query_emb() * 3          # only the saved file says video 11 is the answer
    np.save(emb_path, saved)
    status, out, err = call(capsys, trained["cache"], QUERY, "--run", trained["run"], "--top", "3", "--quiet")
    assert status == EXIT_OK and "note:" not in err
    first = parse_rows(out)[0][3]
    assert first == "b/v3.mp4"            # row 11 = class b, video 3
    meta_path = os.path.join(trained["run"], VIDEO_EMB_META)
    meta = json.load(open(meta_path))
    meta["ids_sha256"] = "0" * 64         # as if the cache had other videos
    json.dump(meta, open(meta_path, "w"))
    status, out, err = call(capsys, trained["cache"], QUERY, "--run", trained["run"], "--top", "3", "--quiet")
    assert status == EXIT_OK and "embedding every video with the head" in err
    assert parse_rows(out)[0][3] != "b/v3.mp4"     # recomputed from the frames, and saved again
    assert json.load(open(meta_path))["ids_sha256"] != "0" * 64
    assert not np.allclose(np.load(emb_path)[11], saved[11])


def test_a_grown_cache_embeds_only_the_new_videos(trained, capsys):
    emb_path = os.path.join(trained["run"], "video_emb.npy")
    saved = np.load(emb_path)
    saved[2] = _query_emb() * 3
    np.save(emb_path, saved)
    from cache.reader import open_cache
    with open_cache(trained["cache"]) as r:
        settings = dict(r.settings)
    w = CacheWriter(trained["cache"], settings)
    rng = np.random.default_rng(9)
    for i in range(3):
        w.add_video(f"new/v{i}.mp4", unit(rng.normal(size=(FRAMES, trained["dim"]))).astype(np.float16),
                    np.linspace(0, 1, FRAMES, dtype=np.float32), label="a", n_distinct=FRAMES, duration=1.0, fps=10.0)
    w.close()
    status, out, err = call(capsys, trained["cache"], QUERY, "--run", trained["run"], "--top", "19", "--quiet")
    assert status == EXIT_OK and "holds 16 of the cache's 19 videos; embedding the new ones" in err
    ids = [r[3] for r in parse_rows(out)]
    assert ids[0] == "a/v2.mp4" and len(ids) == 19 and {"new/v0.mp4", "new/v2.mp4"} <= set(ids)
    assert np.load(emb_path).shape == (19, trained["dim"]) and np.allclose(np.load(emb_path)[2], saved[2])
    status, _, err = call(capsys, trained["cache"], QUERY, "--run", trained["run"], "--quiet")
    assert status == EXIT_OK and "note:" not in err


def test_a_head_for_another_cache_is_refused(trained, tmp_path, capsys):
    weights_hash, _ = tiny_clip_hash()
    other = make_cache(str(tmp_path / "other.h5"), trained["names"], trained["text"],
                       clustered_videos(trained["text"], trained["names"], 3, FRAMES + 2, seed=4),
                       weights_hash=weights_hash, frames=FRAMES + 2)
    status, _, err = call(capsys, other, QUERY, "--run", trained["run"], "--quiet")
    assert status == EXIT_DATA and "made for another cache" in err and len(err.strip().splitlines()) == 1
