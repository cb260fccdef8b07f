"""Write a whole new cache from blocks of videos at once (synthetic and benchmark caches): the
current layout, without a journal or a commit per video. Memory stays at one block."""
import os
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from cache import layout as L
from cache import manifest as M
from cache import schema as S
from cache.shards import ShardSeries, video_row
from cache.writer import MAX_ROWS, SHARD_BYTES

Block = Tuple[np.ndarray, np.ndarray, Dict[str, Sequence]]   # emb [b, N, D], t [b, N], per-video columns


def write_cache(path: str, settings: Dict[str, Any], classes: Sequence[str], text_emb: np.ndarray,
                blocks: Iterable[Block], total: Optional[int] = None, shard_bytes: int = SHARD_BYTES) -> None:
    """A new cache at `path` (refused when one is there) holding the videos of `blocks`, in order;
    columns a block leaves out get their defaults. The manifest appears last, so a killed build
    leaves no cache (only its folder, which the next writer would clean)."""
    if os.path.exists(path):
        raise FileExistsError(f"{path}: a cache is already there")
    N, D = int(settings["frames"]), int(settings["dim"])
    os.makedirs(L.sidecar(path), exist_ok=True)
    per_shard = max(1, min(MAX_ROWS, shard_bytes // L.row_bytes("emb", N, D)))
    series = ShardSeries(path, 1, per_shard, N, D, total)
    st = M.State(dict(settings, schema_version=S.SCHEMA_VERSION), classes=list(classes))
    st.text = {n: np.asarray(v, np.float16) for n, v in zip(st.classes, np.asarray(text_emb).reshape(len(classes), D))}
    V = 0
    for emb, t, columns in blocks:
        b = len(emb)
        emb = np.ascontiguousarray(emb, np.float16)
        cols = {name: (columns[name] if name in columns else [default] * b)
                for name, (_, default) in S.VIDEO_COLUMNS.items()}
        series.write(emb, np.broadcast_to(np.asarray(t, np.float32), (b, N)), video_row(emb), cols)
        st.ids.extend(str(i) for i in cols["id"])
        V += b
    st.shards = series.finish()
    st.row_map = list(range(V))
    tmp = os.path.join(L.sidecar(path), f"manifest.tmp-{os.getpid()}")
    M.write(tmp, st, path)
    M.replace(tmp, path)
