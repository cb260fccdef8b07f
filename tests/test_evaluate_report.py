"""The report layer on hand-made run folders: files, escaping, self-containment, banner, numbers, CLI errors."""
import csv
import json
import os
import re

import numpy as np
import pytest

from clipvid.errors import EXIT_DATA, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from evaluate.__main__ import main
from test_evaluate_support import EVIL, clustered_videos, make_cache, tiny_clip_hash, unit

pytestmark = pytest.mark.slow

NAMES = ["archery", EVIL, "bowling", "cooking"]
EVIL_ID = f"{EVIL}/clip.mp4"


def fake_run(root, head, videos, acc_rng, open_set=None, history=True):
    """A run folder like train writes it, minus head.pt: the report must fall back to its files."""
    d = root / head
    d.mkdir(parents=True)
    split = {k: [v["id"] for v in videos if v["split"] == k] for k in ("train", "val", "test")}
    (d / "split.json").write_text(json.dumps(split))
    hist = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_top1": 0.1 * e} for e in range(1, 5)]
    metrics = {"head": head, "test": {"top1": 0.5, "top5": 0.9, "mean_class": 0.5}, "val": {},
               "history": hist if history else [], "seconds": 1.5, "frames": 6, "epochs_run": 4,
               "split": "split.json", "open_set": open_set}
    (d / "metrics.json").write_text(json.dumps(metrics))
    preds = []
    with open(d / "predictions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "true", "predicted", "score"])
        for v in videos:
            if v["split"] == "test":
                guess = v["label"] if acc_rng.random() < 0.6 else NAMES[0]
                preds.append((v["label"], guess))
                w.writerow([v["id"], v["label"], guess, 0.5])
    np.save(d / "video_emb.npy", np.stack([unit(v["emb"].mean(0)) for v in videos]).astype(np.float32))
    return preds


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(0)
    text = unit(rng.normal(size=(len(NAMES), 32)))
    videos = clustered_videos(text, NAMES, 6, 6, noise=0.8, splits=["train", "val", "test"], captions=True)
    videos[1]["id"] = EVIL_ID
    videos[1]["caption"] = f"caption {EVIL}"
    cache = make_cache(str(root / "c.h5"), NAMES, text, videos, frames=6,
                       failures=[(f"bad{EVIL}.mp4", f"moov atom not found {EVIL}")])
    runs = root / "runs"
    preds = {"meanpool": fake_run(runs, "meanpool", videos, rng, history=False),
             "lstm": fake_run(runs, "lstm", videos, rng, open_set={"seen": NAMES[:3], "unseen": NAMES[3:]})}
    (runs / "broken").mkdir()
    (runs / "broken" / "metrics.json").write_text("{truncated")
    out = root / "out"
    status = main([cache, "--runs", str(runs), "--out", str(out), "--resamples", "200", "--quiet"])
    return {"out": out, "status": status, "preds": preds, "cache": cache, "runs": runs, "text": text,
            "videos": videos}


def test_writes_every_file(report):
    out = report["out"]
    assert report["status"] == EXIT_PARTIAL  # the broken folder was skipped, the rest reported
    data = json.loads((out / "metrics.json").read_text())
    for name in ["report.html", "report.md", "metrics.json"] + data["figures"]:
        assert (out / name).stat().st_size > 0
    for name in data["figures"]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"confusion.png", "per_class.png", "tsne.png", "training_curves.png"} <= set(data["figures"])


def test_html_escapes_every_user_string(report):
    html = (report["out"] / "report.html").read_text()
    assert EVIL not in html
    assert "onerror=alert(1)>" not in html
    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    assert html.count(escaped) >= 3  # class name (tables), failure id and reason
    assert f"bad{escaped}.mp4: moov atom not found {escaped}" in html
    md = (report["out"] / "report.md").read_text()
    assert EVIL not in md and escaped in md


def test_html_is_self_contained(report):
    html = (report["out"] / "report.html").read_text()
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", html)
    srcs = re.findall(r'<img[^>]*src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    data = json.loads((report["out"] / "metrics.json").read_text())
    assert len(srcs) == len(data["figures"])


def test_random_banner_and_provenance(report):
    html = (report["out"] / "report.html").read_text()
    assert html.index('class="banner"') < html.index("<h1>")
    assert "RANDOM CLIP WEIGHTS" in html
    prov = json.loads((report["out"] / "metrics.json").read_text())["provenance"]
    assert prov["random_weights"] is True and prov["frames"] == 6 and prov["videos"] == 24
    assert prov["clip_model"] == "random:tiny" and prov["weights_hash"] == "0" * 64
    assert prov["failures"] == [{"id": f"bad{EVIL}.mp4", "reason": f"moov atom not found {EVIL}"}]


def test_numbers_come_from_the_runs(report):
    data = json.loads((report["out"] / "metrics.json").read_text())
    heads = {h["name"]: h for h in data["heads"]}
    assert set(heads) == {"meanpool", "lstm"}
    assert any("broken" in w for w in data["warnings"])
    for name, preds in report["preds"].items():
        h = heads[name]
        expect = np.mean([t == p for t, p in preds])
        assert h["top1"]["value"] == pytest.approx(expect)
        assert h["top1"]["low"] <= expect <= h["top1"]["high"]
        assert h["top5"]["value"] == pytest.approx(0.9)  # no head to re-score: the run's own number
        assert h["source"] == "predictions.csv" and h["test_videos"] == len(preds) and h["seconds"] == 1.5
    best = max(heads.values(), key=lambda h: h["top1"]["value"])
    assert data["best_head"] == best["name"] and data["confusion"]["head"] == best["name"]
    cm = np.array(data["confusion"]["matrix"])
    assert cm.sum() == len(report["preds"][best["name"]]) and cm.shape == (4, 4)


def test_retrieval_and_open_set_numbers(report):
    data = json.loads((report["out"] / "metrics.json").read_text())
    r = data["retrieval"]["class_prompts"]["CLIP mean-pool"]
    # brute force: each class prompt ranks all videos by cosine with the unit mean of unit frames
    vids = [v for v in report["videos"] if v["split"] == "test"]  # retrieval never searches training videos
    assert data["retrieval"]["videos"] == len(vids) and "test videos" in data["retrieval"]["scope"]
    pooled = np.stack([unit(unit(v["emb"]).mean(0)) for v in vids])
    labels = np.array([NAMES.index(v["label"]) for v in vids])
    aps = []
    for c in range(len(NAMES)):
        order = np.argsort(-(pooled @ report["text"][c]), kind="stable")
        rel = labels[order] == c
        aps.append(np.mean([rel[:i + 1].sum() / (i + 1) for i in np.flatnonzero(rel)]))
    assert r["mAP"] == pytest.approx(np.mean(aps), abs=2e-3)  # the cache stores float16
    assert "no captions" not in data["retrieval"]["captions_note"]  # it has captions, but other weights
    assert "weights" in data["retrieval"]["captions_note"]
    # open-set figures come from the head's own logits only: a head that will not load has none
    assert data["open_set"]["lstm"] == {"note": "the head would not load, so there are no logits to score it with"}
    assert "meanpool" not in data["open_set"]
    assert "lstm: not scored, the head would not load" in (report["out"] / "report.md").read_text()


def test_no_banner_for_real_weights(tmp_path):
    rng = np.random.default_rng(3)
    text = unit(rng.normal(size=(2, 16)))
    videos = clustered_videos(text, ["a", "b"], 3, 4, splits=["test"])
    cache = make_cache(str(tmp_path / "c.h5"), ["a", "b"], text, videos, frames=4, random_weights=False)
    (tmp_path / "runs").mkdir()
    assert main([cache, "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "o"), "--quiet"]) == EXIT_OK
    html = (tmp_path / "o" / "report.html").read_text()
    assert 'class="banner"' not in html and "No usable runs" in html


def test_caption_retrieval_with_real_text_encoder(tmp_path):
    import torch
    from extract.clip_model import encode_texts, load_clip
    weights_hash, dim = tiny_clip_hash()
    clip_ = load_clip("random:tiny", torch.device("cpu"))
    captions = [f"a short clip number {i} of something" for i in range(6)]
    cap = encode_texts(clip_, captions)                                   # [6, D]
    rng = np.random.default_rng(5)
    # video i's frames sit near caption (i + 1) % 6, so every caption's true video is not its best match
    videos = [{"id": f"v{i}.mp4", "emb": cap[(i + 1) % 6] + 0.05 * rng.normal(size=(4, dim)), "label": "x",
               "caption": captions[i]} for i in range(6)]
    cache = make_cache(str(tmp_path / "c.h5"), ["x"], unit(rng.normal(size=(1, dim))), videos,
                       weights_hash=weights_hash, frames=4)
    (tmp_path / "runs").mkdir()
    main([cache, "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "o"), "--quiet"])
    got = json.loads((tmp_path / "o" / "metrics.json").read_text())["retrieval"]["captions"]["CLIP mean-pool"]
    pooled = np.stack([unit(unit(v["emb"].astype(np.float16).astype(np.float32)).mean(0)) for v in videos])
    sim = cap @ pooled.T
    ranks = [1 + int((sim[i] > sim[i, i]).sum()) for i in range(6)]
    assert got["queries"] == 6
    assert got["R@1"] == pytest.approx(np.mean([r <= 1 for r in ranks]))
    assert got["median_rank"] == pytest.approx(np.median(ranks)) and got["mean_rank"] == pytest.approx(np.mean(ranks))
    assert got["R@1"] < 1.0  # the construction really displaced the true videos


def test_cli_errors(tmp_path, capsys):
    assert main([str(tmp_path / "missing.h5"), "--runs", str(tmp_path), "--out", str(tmp_path / "o")]) == EXIT_DATA
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "missing.h5" in err and len(err.splitlines()) == 1
    assert main([str(tmp_path / "x.h5"), "--runs", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == EXIT_DATA
    assert "no such runs folder" in capsys.readouterr().err
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    assert main([str(tmp_path / "junk.h5"), "--runs", str(tmp_path), "--out", str(tmp_path / "o")]) == EXIT_DATA
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'junk.h5'}: ")
    assert main(["x.h5", "--runs", str(tmp_path), "--out", "o", "--resamples", "0"]) == EXIT_USAGE
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0 and "--runs" in capsys.readouterr().out
    assert not os.path.exists(tmp_path / "o")
