"""Builders shared by the evaluate tests (real HDF5 caches, real tiny videos), and checks of the builders."""
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from cache import CacheWriter, open_cache
from cache.schema import make_settings

EVIL = "<img src=x onerror=alert(1)>"


def tiny_clip_hash() -> Tuple[str, int]:
    """(weights hash, D) of random:tiny, loaded through the real loader."""
    import torch
    from extract.clip_model import load_clip
    clip_ = load_clip("random:tiny", torch.device("cpu"))
    return clip_.weights_hash, clip_.dim


def make_cache(path: str, class_names: Sequence[str], text_emb: np.ndarray, videos: List[dict],
               weights_hash: str = "0" * 64, frames: int = 8, random_weights: bool = True,
               failures: Sequence[Tuple[str, str]] = (), source_root: str = "") -> str:
    """A real cache file. Each video: {id, emb [N, D], label (name or None), split, caption, t [N]}."""
    dim = text_emb.shape[1]
    settings = make_settings("random:tiny", weights_hash, random_weights, dim, frames, {"kind": "test"},
                             ["a video of {}."], source_root)
    w = CacheWriter(path, settings)
    w.set_classes(list(class_names), text_emb)
    for v in videos:
        t = v.get("t", np.linspace(0, 1.4, frames, dtype=np.float32))
        w.add_video(v["id"], v["emb"].astype(np.float16), t, label=v.get("label"), split=v.get("split", ""),
                    caption=v.get("caption", ""), n_distinct=frames, duration=2.0, fps=10.0)
    for vid, why in failures:
        w.add_failure(vid, why)
    w.close()
    return path


def clustered_videos(text_emb: np.ndarray, class_names: Sequence[str], per_class: int, frames: int,
                     noise: float = 0.6, seed: int = 0, id_prefix: str = "", captions: bool = False,
                     splits: Optional[Sequence[str]] = None) -> List[dict]:
    """Videos whose frames scatter around their class's text embedding, so classes are separable."""
    rng = np.random.default_rng(seed)
    out = []
    for c, name in enumerate(class_names):
        for j in range(per_class):
            emb = text_emb[c][None, :] + noise * rng.normal(size=(frames, text_emb.shape[1]))
            split = splits[j % len(splits)] if splits else ""
            out.append({"id": f"{id_prefix}{name}/v{j}.mp4", "emb": emb, "label": name, "split": split,
                        "caption": f"a clip of {name} number {j}" if captions else ""})
    return out


def make_video(path: str, seconds: float = 2.0, size: str = "160x120") -> str:
    """A real tiny video from ffmpeg's testsrc pattern."""
    from tests.helpers_video import make_video as make
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return make(path, seconds, 10, size, "testsrc")


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_make_cache_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    names = ["a", EVIL]
    text = unit(rng.normal(size=(2, 16)))
    videos = clustered_videos(text, names, 3, 4, splits=["train", "test"], captions=True)
    path = make_cache(str(tmp_path / "c.h5"), names, text, videos, frames=4, failures=[(EVIL, "bad <b>")])
    with open_cache(path) as r:
        assert r.num_videos == 6 and r.frames == 4 and r.class_names == names
        assert r.failures == [(EVIL, "bad <b>")]
        assert set(r.splits) == {"train", "test"} and r.captions[0].startswith("a clip of a")


def test_make_video_is_decodable(tmp_path):
    from evaluate.thumbs import grab_frame
    path = make_video(str(tmp_path / "v" / "x.mp4"), seconds=1.0)
    jpg = grab_frame(path, 0.5)
    assert jpg is not None and jpg[:2] == b"\xff\xd8"
    assert grab_frame(str(tmp_path / "missing.mp4"), 0.0) is None
    not_video = tmp_path / "notes.txt"
    not_video.write_text("not a video")
    assert grab_frame(str(not_video), 0.0) is None
