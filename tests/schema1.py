"""Write a schema-1 cache (every array inside one HDF5 file) the way clipvid wrote them before shards."""
import h5py
import numpy as np

_STR = h5py.string_dtype("utf-8")


def write_schema1(path: str, emb: np.ndarray, labels, classes, text: np.ndarray, source_root: str = "src",
                  failures=(("bad.mp4", "moov atom not found"),)) -> None:
    """emb [V, N, D]; ids are v0.mp4, v1.mp4, ...; timestamps evenly spaced over 1 s."""
    V, N, D = emb.shape
    attrs = {"schema_version": 1, "clip_model": "some-model", "weights_hash": "w" * 64, "random_weights": False,
             "dim": D, "frames": N, "sampler": '{"v": 1}', "prompt_templates": '["a photo of {}."]',
             "source_root": source_root}
    with h5py.File(path, "w") as f:
        f.attrs.update(attrs)
        f.create_dataset("frames/emb", data=emb.astype(np.float16), chunks=(1, N, D), maxshape=(None, N, D))
        f.create_dataset("frames/t", data=np.tile(np.linspace(0, 1, N, dtype=np.float32), (V, 1)))
        f.create_dataset("videos/id", data=np.array([f"v{i}.mp4" for i in range(V)], dtype=object), dtype=_STR)
        f.create_dataset("videos/label", data=np.asarray(labels, np.int32))
        for key in ("videos/split", "videos/caption"):
            f.create_dataset(key, data=np.array([""] * V, dtype=object), dtype=_STR)
        f.create_dataset("videos/n_distinct", data=np.full(V, N, np.int32))
        f.create_dataset("videos/duration", data=np.ones(V, np.float32))
        f.create_dataset("videos/fps", data=np.full(V, 10, np.float32))
        f.create_dataset("classes/name", data=np.array(list(classes), dtype=object), dtype=_STR)
        f.create_dataset("classes/text_emb", data=text.astype(np.float16))
        f.create_dataset("failures/id", data=np.array([i for i, _ in failures], dtype=object), dtype=_STR)
        f.create_dataset("failures/reason", data=np.array([r for _, r in failures], dtype=object), dtype=_STR)
