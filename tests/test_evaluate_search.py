"""`python -m evaluate.search` with the real random:tiny CLIP text encoder, real caches and real videos."""
import base64
import re

import numpy as np
import pytest
import torch
from conftest import run_cli

from clipvid.errors import EXIT_DATA, EXIT_OK, EXIT_USAGE
from evaluate.search import main
from test_evaluate_support import EVIL, make_cache, make_video, tiny_clip_hash, unit

QUERY = "a person juggling three balls"
FRAMES = 6


@pytest.fixture(scope="module")
def query_emb():
    from extract.clip_model import encode_texts, load_clip
    return encode_texts(load_clip("random:tiny", torch.device("cpu")), [QUERY])[0]


@pytest.fixture(scope="module")
def search_cache(tmp_path_factory, query_emb):
    """Five videos; the one called TARGET holds the query's own embedding in frame row 4 only."""
    root = tmp_path_factory.mktemp("search")
    weights_hash, dim = tiny_clip_hash()
    rng = np.random.default_rng(1)
    names = ["juggling", "other"]
    text = unit(rng.normal(size=(2, dim)))
    ids = ["clips/a.mp4", f"clips/{EVIL}.mp4", "clips/c.mp4", "clips/target.mp4", "clips/missing.mp4"]
    t = np.linspace(0.1, 1.6, FRAMES, dtype=np.float32)
    videos = []
    for i, vid in enumerate(ids):
        emb = unit(rng.normal(size=(FRAMES, dim)))
        if vid.endswith("target.mp4"):
            emb[4] = query_emb * 5  # dominates the mean and is the single best frame
        videos.append({"id": vid, "emb": emb, "label": names[i % 2], "t": t})
    for vid in ids[:4]:
        make_video(str(root / "videos" / vid), seconds=2.0)
    path = make_cache(str(root / "cache.h5"), names, text, videos, weights_hash=weights_hash, frames=FRAMES,
                      source_root=str(root / "videos"))
    return {"path": path, "root": root, "t": t}


def call(capsys, *argv):
    """Run the CLI in-process (fast: no interpreter start-up) and return (status, stdout, stderr)."""
    status = main([str(a) for a in argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def parse_rows(stdout: str):
    rows = []
    for line in stdout.splitlines()[1:]:
        m = re.match(r"\s*(\d+)\s+(-?[\d.]+)\s+([\d.]+)s\s+(.*)$", line)
        assert m, f"unexpected line {line!r}"
        rows.append((int(m.group(1)), float(m.group(2)), float(m.group(3)), m.group(4)))
    return rows


@pytest.mark.slow
def test_search_ranks_target_first_with_its_best_moment(search_cache):
    out = run_cli("-m", "evaluate.search", search_cache["path"], QUERY, "--top", "3", "--quiet")
    rows = parse_rows(out.stdout)
    assert len(rows) == 3
    assert rows[0][3] == "clips/target.mp4"
    assert rows[0][2] == pytest.approx(float(search_cache["t"][4]), abs=0.01)
    assert rows[0][1] > rows[1][1] >= rows[2][1]
    assert "RANDOM CLIP WEIGHTS" in out.stderr


def test_search_html_has_thumbnails_and_escapes(search_cache, tmp_path, capsys):
    page = tmp_path / "out.html"
    query = QUERY + " <script>alert(2)</script>"
    status, stdout, _ = call(capsys, search_cache["path"], query, "--top", "5", "--html", page, "--quiet")
    assert status == EXIT_OK and len(parse_rows(stdout)) == 5
    html = page.read_text()
    assert EVIL not in html and "<script>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    jpegs = re.findall(r'src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(jpegs) == 4  # missing.mp4 has no file: its row renders without a thumbnail
    assert all(base64.b64decode(j)[:2] == b"\xff\xd8" for j in jpegs)
    assert html.count("no thumbnail") == 1
    assert "http://" not in html and "https://" not in html


def test_search_with_explicit_root_that_lacks_videos(search_cache, tmp_path, capsys):
    page = tmp_path / "out.html"
    status, _, _ = call(capsys, search_cache["path"], QUERY, "--top", "2", "--html", page, "--root", tmp_path,
                        "--quiet")
    assert status == EXIT_OK
    html = page.read_text()
    assert "data:image/jpeg" not in html and html.count("no thumbnail") == 2



@pytest.mark.slow
def test_search_refuses_other_weights(search_cache, tmp_path):
    other = tmp_path / "other.pt"
    state = torch.load(search_cache_weights(), weights_only=True)
    state["text_projection"] = state["text_projection"] + 1.0
    torch.save(state, other)
    out = run_cli("-m", "evaluate.search", search_cache["path"], QUERY, "--clip-model", str(other), check=False)
    assert out.returncode == EXIT_DATA
    assert out.stderr.startswith("error: ") and "weights" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def search_cache_weights() -> str:
    from extract.clip_model import resolve_weights
    return resolve_weights("random:tiny")[0]


def test_search_empty_query_and_bad_top(search_cache, capsys):
    status, _, err = call(capsys, search_cache["path"], "   ")
    assert status == EXIT_USAGE and err == "error: query: the query is empty; give a sentence to search for\n"
    status, _, err = call(capsys, search_cache["path"], QUERY, "--top", "0")
    assert status == EXIT_USAGE and "--top" in err


def test_search_empty_cache_and_missing_cache(tmp_path, capsys):
    weights_hash, dim = tiny_clip_hash()
    text = unit(np.random.default_rng(0).normal(size=(1, dim)))
    path = make_cache(str(tmp_path / "empty.h5"), ["x"], text, [], weights_hash=weights_hash)
    status, _, err = call(capsys, path, QUERY)
    assert status == EXIT_DATA and err.strip() == f"error: {path}: the cache has no videos to search"
    status, _, err = call(capsys, tmp_path / "nope.h5", QUERY)
    assert status == EXIT_DATA and err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_search_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and "--run" in out and "--html" in out and "--root" in out


def test_short_token_encoding_equals_the_full_context():
    import clip
    from extract.clip_model import encode_texts, load_clip
    clip_ = load_clip("random:tiny", torch.device("cpu"))
    texts = [QUERY, "a", "word " * 100]                          # short, shortest, truncated at 77 tokens
    with torch.inference_mode():
        full = clip_.model.encode_text(clip.tokenize(texts, truncate=True)).float()
    full = torch.nn.functional.normalize(full, dim=-1).numpy()
    assert np.allclose(encode_texts(clip_, texts), full, atol=1e-5)
    assert np.allclose(encode_texts(clip_, texts[:1]), full[:1], atol=1e-5)


def test_queries_file_writes_a_csv_of_hits(search_cache, tmp_path, capsys):
    import csv
    queries = tmp_path / "q.txt"
    queries.write_text(f"{QUERY}\n\n  a cat,  on \"a\" mat  \n{EVIL}\n", encoding="utf-8")
    out = tmp_path / "hits.csv"
    status, _, err = call(capsys, search_cache["path"], "--queries", queries, "--out", out, "--top", "2", "--quiet")
    assert status == EXIT_OK and "3 queries, 6 hits" in err
    rows = list(csv.DictReader(open(out, encoding="utf-8")))
    assert list(rows[0]) == ["query_line", "query", "rank", "id", "score", "time", "label", "caption"]
    assert [(r["query_line"], r["rank"]) for r in rows] == [("1", "1"), ("1", "2"), ("3", "1"), ("3", "2"),
                                                            ("4", "1"), ("4", "2")]
    assert rows[2]["query"] == 'a cat, on "a" mat' and rows[4]["query"] == EVIL
    assert rows[0]["id"] == "clips/target.mp4" and float(rows[0]["time"]) == pytest.approx(search_cache["t"][4], abs=1e-3)
    # the same answers as one query at a time
    status, stdout, _ = call(capsys, search_cache["path"], QUERY, "--top", "2", "--quiet")
    assert [r[3] for r in parse_rows(stdout)] == [rows[0]["id"], rows[1]["id"]]
    assert [r[1] for r in parse_rows(stdout)] == pytest.approx([float(rows[0]["score"]), float(rows[1]["score"])],
                                                               abs=1e-4)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    status, _, err = call(capsys, search_cache["path"], "--queries", empty)
    assert status == EXIT_DATA and err.strip() == f"error: {empty}: no queries in the file (one per line)"
    status, _, err = call(capsys, search_cache["path"], "--queries", tmp_path / "none.txt")
    assert status == EXIT_DATA and "cannot read" in err
    status, _, err = call(capsys, search_cache["path"], QUERY, "--queries", queries)
    assert status == EXIT_USAGE and "one query, --queries FILE or --serve" in err


@pytest.mark.slow
def test_search_schema1_cache_made_before_shards(tmp_path, query_emb):
    """A cache written the old way (one HDF5 file): search builds its video index once, then maps it."""
    from schema1 import write_schema1
    rng = np.random.default_rng(5)
    weights_hash, dim = tiny_clip_hash()
    emb = unit(rng.normal(size=(40, FRAMES, dim)))
    emb[17, 2] = query_emb * 5
    path = str(tmp_path / "old.h5")
    write_schema1(path, emb, rng.integers(0, 2, 40), ["a", "b"], unit(rng.normal(size=(2, dim))))
    import h5py
    with h5py.File(path, "r+") as f:   # the tiny random CLIP's weights, so the query encoder is accepted
        f.attrs["weights_hash"], f.attrs["clip_model"], f.attrs["random_weights"] = weights_hash, "random:tiny", True
    for _ in range(2):  # the first search builds the index sidecar, the second maps it
        out = run_cli("-m", "evaluate.search", path, QUERY, "--top", "3", "--quiet")
        rows = parse_rows(out.stdout)
        assert rows[0][3] == "v17.mp4" and rows[0][2] == pytest.approx(np.linspace(0, 1, FRAMES)[2], abs=1e-3)
