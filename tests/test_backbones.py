"""Backbones (issue 25): specs, each backbone's preprocessing against its own transform, refusals."""
import json
import os

import av
import numpy as np
import pytest
import torch

from cache.schema import make_settings, settings_mismatch
from extract.backbones import OPENAI, Preprocess, parse_open_clip, preprocess_of
from extract.decode import sample_video
from extract.weightbase import UnknownModel, WeightsUnavailable
from hostile_media import clip, one_line_error
from conftest import ROOT, run_cli

SIGLIP2 = "ViT-B-16-SigLIP2/webli"


def test_each_spec_has_its_models_preprocessing():
    assert preprocess_of("ViT-B/32") == OPENAI == preprocess_of("random:tiny")
    laion = preprocess_of("open_clip:ViT-B-16/laion2b_s34b_b88k")       # config only: nothing downloaded
    assert (laion.size, laion.resize, laion.interpolation) == (224, "crop", "bicubic") and laion.mean == OPENAI.mean
    siglip = preprocess_of(f"random:open_clip:{SIGLIP2}")
    assert (siglip.size, siglip.resize, siglip.mean, siglip.std) == (224, "squash", (0.5,) * 3, (0.5,) * 3)
    assert preprocess_of("random:open_clip:ViT-B-16-SigLIP-384").size == 384   # its first tag's, at its size
    assert preprocess_of("random:open_clip:clipvid-tiny-squash").resize == "squash"


@pytest.mark.parametrize("spec, why", [
    ("open_clip:ViT-Nope-1/x", "no architecture 'ViT-Nope-1'"),
    ("open_clip:ViT-B-16/no_such_tag", "no pretrained 'no_such_tag' for ViT-B-16"),
    ("open_clip:ViT-B-16", "say which weights"),
])
def test_bad_open_clip_specs_are_usage_errors(spec, why):
    with pytest.raises(UnknownModel, match=why):
        parse_open_clip(spec)


def test_missing_checkpoint_file_is_named(tmp_path):
    with pytest.raises(WeightsUnavailable, match="no such checkpoint file"):
        parse_open_clip(f"open_clip:clipvid-tiny@{tmp_path / 'nope.pt'}")


def test_appending_with_another_preprocessing_is_refused_naming_it():
    def settings(prep: Preprocess, templates=("a video of {}.",)):
        return make_settings("m", "h" * 64, True, 64, 8, {"v": 1}, list(templates), "/videos", prep.settings())
    crop, squash = Preprocess(), Preprocess(resize="squash", mean=(0.5,) * 3, std=(0.5,) * 3)
    assert settings_mismatch(settings(crop), settings(crop)) is None
    assert "preprocess=" in settings_mismatch(settings(crop), settings(squash))
    assert "prompt_templates=" in settings_mismatch(settings(crop), settings(crop, ("a photo of {}.",)))
    old = settings(crop)
    old.pop("preprocess")                 # a cache made before it was recorded: still extendable
    assert settings_mismatch(old, settings(crop)) is None


def _full_frames(path: str):
    """Every frame of a video at full size, as PIL images, with its time: what a user's transform reads."""
    with av.open(path) as container:
        return [(float(f.time), f.to_image()) for f in container.decode(container.streams.video[0])]


def _transform_gap(path: str, prep: Preprocess, transform) -> float:
    """Mean absolute difference (0-255 scale) between our sampled frames, normalised with the backbone's mean
    and std, and the backbone's own torchvision transform of the same source frames."""
    sample = sample_video(path, 6, geometries=[prep.geometry])
    frames = _full_frames(path)
    times = np.array([t for t, _ in frames])
    ours = sample.frames_for(prep.geometry).transpose(0, 3, 1, 2)                           # [6, 3, S, S]
    ours = torch.from_numpy(np.ascontiguousarray(ours)).float() / 255
    mean, std = torch.tensor(prep.mean).view(3, 1, 1), torch.tensor(prep.std).view(3, 1, 1)
    ours = (ours - mean) / std
    theirs = torch.stack([transform(frames[int(np.argmin(abs(times - t)))][1]) for t in sample.t])
    assert ours.shape == theirs.shape
    return float(((ours - theirs).abs() * std * 255).mean())


def _open_clip_transform(spec_tag: str):
    from open_clip import get_pretrained_cfg
    from open_clip.transform import PreprocessCfg, image_transform_v2
    arch, tag = spec_tag.split("/")
    cfg = get_pretrained_cfg(arch, tag)
    keys = ("mean", "std", "interpolation", "resize_mode")
    return image_transform_v2(PreprocessCfg(size=224, **{k: cfg[k] for k in keys}), is_train=False)


@pytest.mark.parametrize("video", ["demo_demo.mp4", "tests_data_test.mp4"])
def test_siglip_style_preprocessing_matches_its_own_transform(real_videos, video):
    path = next(p for p in real_videos if p.endswith(video))
    prep = preprocess_of(f"random:open_clip:{SIGLIP2}")
    gap = _transform_gap(path, prep, _open_clip_transform(SIGLIP2))
    # ffmpeg's scaler against PIL's: about 1 of 255 on average. The other geometry is far off.
    assert gap < 2.0
    assert _transform_gap(path, OPENAI, _open_clip_transform(SIGLIP2)) > 4 * gap


@pytest.mark.parametrize("video", ["demo_demo.mp4", "tests_data_test.mp4"])
def test_openai_style_preprocessing_matches_clips_own_transform(real_videos, video):
    import clip as openai_clip
    path = next(p for p in real_videos if p.endswith(video))
    gap = _transform_gap(path, OPENAI, openai_clip.clip._transform(224))
    assert gap < 2.0
    squash = Preprocess(resize="squash")
    assert _transform_gap(path, squash, openai_clip.clip._transform(224)) > 4 * gap


@pytest.fixture(scope="module")
def one_video(tmp_path_factory):
    base = tmp_path_factory.mktemp("bb")
    os.makedirs(base / "videos" / "a")
    clip(base / "videos" / "a" / "v.mp4")
    return base


@pytest.mark.slow
@pytest.mark.parametrize("spec, names", [
    # SigLIP 2's tokenizer comes from the Hugging Face hub: not here, and nothing downloads in tests.
    (f"random:open_clip:{SIGLIP2.split('/')[0]}", ["tokenizer", "timm/ViT-B-16-SigLIP2"]),
    ("open_clip:ViT-B-16/laion2b_s34b_b88k", ["laion/CLIP-ViT-B-16-laion2B-s34B-b88K", "open_clip:ViT-B-16@"]),
    ("ViT-B/32", ["ViT-B-32.pt", "CLIPVID_OFFLINE"]),
])
def test_backbone_that_cannot_be_had_fails_in_one_line_exit_3(one_video, tmp_path, spec, names):
    out = one_video / "x.h5"
    home = dict(os.environ, HOME=str(tmp_path), PYTHONPATH=ROOT)   # an empty home: no weights, no hub cache
    proc = run_cli("-m", "extract", one_video / "videos", "--out", out, "--clip-model", spec, "--quiet",
                   check=False, timeout=120, env=home)
    assert proc.returncode == 3, proc.stderr
    line = one_line_error(proc)
    assert all(n in line for n in names), line
    assert not os.path.exists(out)


def test_extract_help_names_every_backbone_form():
    text = run_cli("-m", "extract", "--help").stdout
    for form in ("open_clip:ARCH/PRETRAINED", "open_clip:ARCH@/path/to/checkpoint", "random:open_clip:ARCH",
                 "CLIPVID_OFFLINE"):
        assert form in " ".join(text.split()), form


@pytest.mark.slow
def test_cache_records_the_backbones_preprocessing(one_video):
    import h5py
    out = one_video / "squash.h5"
    run_cli("-m", "extract", one_video / "videos", "--out", out, "--clip-model",
            "random:open_clip:clipvid-tiny-squash", "--frames", "4", "--workers", "1", "--quiet", timeout=300)
    with h5py.File(out, "r") as f:   # as a plain h5py user reads it
        prep = json.loads(f.attrs["preprocess"])
        assert (prep["resize"], prep["mean"], prep["size"]) == ("squash", [0.5] * 3, 224)
        assert f.attrs["clip_model"] == "random:open_clip:clipvid-tiny-squash"
    again = run_cli("-m", "extract", one_video / "videos", "--out", out, "--clip-model", "random:tiny",
                    "--frames", "4", "--workers", "1", "--quiet", check=False, timeout=300)
    assert again.returncode == 3 and "refusing to append" in one_line_error(again)
