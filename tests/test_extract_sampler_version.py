"""A cache whose frames an older sampler chose stays readable, and extraction into it is refused in one line."""
import numpy as np
import pytest

from cache import open_cache
from clipvid.errors import CacheError
from cache.schema import make_settings
from cache.writer import CacheWriter
from extract import pipeline
from extract.prompts import TEMPLATES


def _settings(sampler: dict) -> dict:
    return make_settings("random:tiny", "h" * 64, True, 4, 8, sampler, TEMPLATES, "/videos")


def test_old_sampler_cache_is_refused_with_the_way_out(tmp_path):
    out = str(tmp_path / "old.h5")
    old = dict(pipeline.SAMPLER, version=1)
    w = CacheWriter(out, _settings(old))
    w.set_classes(["a"], np.zeros((1, 4), np.float16))
    w.add_video("a/x.mp4", np.ones((8, 4), np.float16), np.arange(8, dtype=np.float32), "a", content="c")
    w.close()
    with open_cache(out) as r:                        # readable (and trainable) as before
        assert list(r.ids) == ["a/x.mp4"] and list(r.decoder) == [""]
    with pytest.raises(CacheError) as err:
        pipeline.precheck(out, _settings(pipeline.SAMPLER))
    why = str(err.value)
    assert "sampler version 1" in why and "version 2" in why and "new --out" in why and "\n" not in why
    pipeline.precheck(out, _settings(old))            # the same sampler: appending is fine


def test_the_decoder_column_is_recorded(tmp_path):
    out = str(tmp_path / "new.h5")
    w = CacheWriter(out, _settings(pipeline.SAMPLER))
    w.set_classes(["a"], np.zeros((1, 4), np.float16))
    for vid, dec in (("a/x.mp4", "pyav"), ("a/y.webp", "ffmpeg")):
        w.add_video(vid, np.ones((8, 4), np.float16), np.arange(8, dtype=np.float32), "a", decoder=dec)
    w.close()
    with open_cache(out) as r:
        assert dict(zip(r.ids, r.decoder)) == {"a/x.mp4": "pyav", "a/y.webp": "ffmpeg"}
