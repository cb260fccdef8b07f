"""Every example of docs/api.md runs as written, and the API's pieces do what it says."""
import os
import re

import numpy as np
import pytest

from conftest import head_run, ROOT
from train.cli import main as train_main
from train.synthetic import write_synthetic_cache


def readme_examples():
    text = open(os.path.join(ROOT, "docs", "api.md"), encoding="utf-8").read()
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """cache.h5 and runs/transformer as docs/api.md names them (a synthetic cache: no CLIP needed)."""
    root = tmp_path_factory.mktemp("api")
    write_synthetic_cache(str(root / "cache.h5"), num_classes=4, per_class=8, frames=32, dim=16, unlabelled=2)
    assert train_main([str(root / "cache.h5"), "--out", str(root / "runs"), "--head", "transformer,linear",
                       "--frames", "16", "--quiet"]) == 0   # docs/api.md names runs/transformer-f16-e60-lr0.001/seed0
    return root


def test_readme_examples_run(workdir, monkeypatch, capsys):
    examples = readme_examples()
    assert len(examples) == 2
    monkeypatch.chdir(workdir)
    for code in examples:
        scope = {}
        exec(compile(code, "docs/api.md", "exec"), scope)
    out = capsys.readouterr().out
    assert "(34, 16, 16)" in out                     # 34 videos, 16 of 32 rows, D = 16
    assert re.search(r"\d+\.\d\d- *\d+\.\d\d s", out)  # the timeline's segments were printed
    probs = scope["probs"]
    assert probs.shape == (8, 4) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    windows = scope["windows"]                       # N = 32: windows start at rows 0, 10 and 12
    assert windows.shape == (8, 3, 4) and np.allclose(windows.sum(axis=2), 1.0, atol=1e-5)
    from train.api import window_probabilities
    np.testing.assert_allclose(windows, window_probabilities(scope["head"].predict, scope["data"].emb[:8], 20, 10),
                               rtol=0, atol=1e-5)
    segs = scope["segments"]
    assert segs[0].start_s == 0.0 and segs[-1].end_s == pytest.approx(1.0)
    assert all(a.end_s == b.start_s and a.label != b.label for a, b in zip(segs, segs[1:]))


def test_dataset_items_and_head_text(workdir):
    from torch.utils.data import DataLoader
    from train.api import FrameDataset, load_arrays, load_head
    data = load_arrays(str(workdir / "cache.h5"))
    ds = FrameDataset(str(workdir / "cache.h5"))
    x, y = ds[3]
    assert tuple(x.shape) == (32, 16) and y == data.labels[3]
    assert np.allclose(x.numpy(), data.emb[3].astype(np.float32))
    assert ds[-1][1] == -1                           # the unlabelled videos come last
    batch = next(iter(DataLoader(ds, batch_size=5, num_workers=1)))
    assert tuple(batch[0].shape) == (5, 32, 16)
    head = load_head(head_run(workdir / "runs", "transformer"))
    assert head.text_source == "checkpoint" and np.allclose(head.text_emb, data.text_emb, atol=1e-6)
    linear = load_head(head_run(workdir / "runs", "linear"))
    with pytest.raises(ValueError, match="only the classes"):
        linear.predict(data.emb[:2], data.text_emb[:2])
    assert linear.predict(data.emb[:2]).shape == (2, 4)
