"""Everything a text query needs, loaded once: the cache, CLIP's text encoder and a video index; one query -> hits."""
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence

import numpy as np

from evaluate import metrics as M
from evaluate.index import VideoIndex

if TYPE_CHECKING:
    from cache.reader import CacheReader
    from extract.clip_model import LoadedClip


@dataclass
class Hit:
    """One ranked video: cache row, id, cosine score and the timestamp of its best-matching frame."""
    rank: int
    row: int
    id: str
    score: float
    time: float
    label: str = ""
    caption: str = ""


def best_moments(reader: "CacheReader", rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Per row, the timestamp (s) of the frame whose embedding has the highest cosine with the query."""
    if not len(rows):
        return np.zeros(0, np.float32)
    emb = M.l2_normalise(reader.emb(rows))                                           # [k, N, D]
    best = (emb @ M.l2_normalise(query)).argmax(1)                                   # [k]
    return reader.times(rows)[np.arange(len(rows)), best]


class Searcher:
    """Answers free-text queries over one cache; built once (the slow part), then `query` per request."""

    def __init__(self, reader: "CacheReader", clip_: "LoadedClip", video_emb: np.ndarray, source: str,
                 packed: bool = False, progress: bool = False, stage: Callable[[str], None] = lambda s: None):
        self.reader = reader
        self.clip = clip_
        self.source = source                                                          # what is ranked, in words
        tick = lambda i, n: stage(f"packing the video index: block {i} of {n}")  # noqa: E731
        self.index = VideoIndex(video_emb, packed=packed, progress=progress, on_block=tick)

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Queries -> unit text embeddings [T, D]."""
        from evaluate.clip_text import encode
        return encode(self.clip, list(texts), progress=progress)

    def hits(self, query_emb: np.ndarray, top: int) -> List[Hit]:
        """The ranked hits for one query embedding [D]: rank, then only the shown videos' frames."""
        rows = self.index.top(query_emb, top)
        scores = self.index.scores(rows, query_emb)
        times = best_moments(self.reader, rows, query_emb)
        r, names = self.reader, self.reader.class_names
        return [Hit(i + 1, int(row), str(r.ids[row]), float(s), float(t),
                    names[r.labels[row]] if 0 <= r.labels[row] < len(names) else "", str(r.captions[row]))
                for i, (row, s, t) in enumerate(zip(rows, scores, times))]

    def query(self, text: str, top: int = 10) -> List[Hit]:
        """One sentence -> its ranked hits (what the search page calls per request)."""
        return self.hits(self.encode([text])[0], top)


def normalise_query(text: str) -> str:
    """Whitespace collapsed; the form every entry point searches for."""
    return " ".join(str(text).split())


def open_searcher(reader: "CacheReader", run: Optional[str], clip_model: Optional[str], device: str,
                  packed: bool, progress: bool, note: Callable[[str], None] = lambda s: None,
                  stage: Callable[[str], None] = lambda s: None) -> Searcher:
    """Load the text encoder and the video embeddings (the cache's index, or a run's) for `reader`.

    `note` gets messages for the user, `stage` what is loading now. Raises evaluate.clip_text.ClipMismatch,
    ValueError (device) or train.api.CheckpointError.
    """
    from evaluate.clip_text import load_text_encoder
    stage("loading CLIP's text encoder")
    clip_ = load_text_encoder(reader, clip_model, device)
    stage(f"reading the video index ({reader.num_videos:,} videos)")
    if run is None:
        emb, source = reader.video_index(progress), "mean-pooled CLIP frame embeddings"
    else:
        from evaluate.run_emb import run_video_embeddings
        emb, source = run_video_embeddings(run, reader, device, progress, note)
    return Searcher(reader, clip_, emb, source, packed=packed, progress=progress, stage=stage)
