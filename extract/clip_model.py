"""Load a backbone (OpenAI CLIP or open_clip, see extract.backbones) and embed images and texts with it."""
from dataclasses import dataclass
import threading
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch

from extract.backbones import OPENAI, Preprocess, is_open_clip, load_open_clip, preprocess_of
from extract.prompts import TEMPLATES, fill
from extract.weightbase import WeightsUnavailable
from extract.weights import file_hash, resolve_weights


@dataclass
class LoadedClip:
    """A CLIP model ready to embed, and what identifies its weights."""
    model: torch.nn.Module
    spec: str            # what the user asked for (name, path or random:<arch>)
    path: str            # the weights file it was loaded from
    weights_hash: str
    random: bool
    dim: int
    resolution: int
    device: torch.device
    preprocess: Preprocess = OPENAI
    tokenize: Optional[Callable] = None   # texts -> [T, L] token ids; None: OpenAI clip's own

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.visual.parameters()).dtype


def load_clip(spec: str, device: torch.device) -> LoadedClip:
    """Load a backbone through its own real loader (clip.load or open_clip) from a resolved local file."""
    path, is_random = resolve_weights(spec)
    if is_open_clip(spec):
        model, dim, tokenizer = load_open_clip(spec, path, device)
        prep = preprocess_of(spec)
        return LoadedClip(model, spec, path, file_hash(path), is_random, dim, prep.size, torch.device(device),
                          prep, tokenizer)
    import clip
    try:
        model, _ = clip.load(path, device=device, jit=False)
    except Exception as exc:  # a damaged or foreign file: say which and why, in one line
        raise WeightsUnavailable(f"cannot load CLIP weights from {path}: {str(exc).splitlines()[0][:200]}")
    model.eval()
    from clipvid.device import amp_dtype
    if amp_dtype(device, "embed") is None:
        model.float()   # clip.load keeps half weights on every device but the CPU; fp32 was decided (MPS)
    dim = int(model.text_projection.shape[1])
    return LoadedClip(model, spec, path, file_hash(path), is_random, dim,
                      int(model.visual.input_resolution), torch.device(device))


def _autocast(device: torch.device):
    from clipvid.device import autocast
    return autocast(device, "embed")


_LOCAL = threading.local()  # per thread: a Dask worker may run several tasks at once


def _input_buffer(batch: int, size: tuple, device: torch.device) -> torch.Tensor:
    """This thread's float32 [batch, 3, H, W] input buffer on `device` (made once, then reused)."""
    shape = (batch, 3, *size)
    buf = getattr(_LOCAL, "buf", None)
    if buf is None or buf.shape != shape or buf.device != torch.device(device):
        buf = _LOCAL.buf = torch.empty(shape, dtype=torch.float32, device=device)
    return buf


@torch.inference_mode()
def encode_frames(clip_: LoadedClip, frames: np.ndarray, batch_size: int = 100) -> np.ndarray:
    """uint8 frames [B, R, R, 3] (already resized as the backbone's preprocessing does) -> image
    embeddings [B, D] float16, normalised with the backbone's own mean and std."""
    # Cast, permute and centre in one pass into a float batch reused across calls: a fresh
    # 60 MB tensor per video (plus two more passes) cost ~15,000 page faults and ~40% of a
    # worker's time with small models (bench.pipeline).
    shift = (torch.tensor(clip_.preprocess.mean, device=clip_.device) * 255.0).view(3, 1, 1)
    scale = (1.0 / (torch.tensor(clip_.preprocess.std, device=clip_.device) * 255.0)).view(3, 1, 1)
    dtype = clip_.dtype
    out = []
    for s in range(0, len(frames), batch_size):
        # Sampled frames are channels-last views of planar memory: read the planes as they lie.
        planes = np.ascontiguousarray(frames[s:s + batch_size].transpose(0, 3, 1, 2))
        u8 = torch.from_numpy(planes).to(clip_.device)                                        # [b, 3, R, R]
        x = _input_buffer(batch_size, u8.shape[2:], clip_.device)[:len(u8)]                   # [b, 3, R, R]
        torch.sub(u8, shift, out=x).mul_(scale)
        x = x.to(dtype)
        with _autocast(clip_.device):
            out.append(clip_.model.encode_image(x).float().cpu())  # [b, D]
    return torch.cat(out).numpy().astype(np.float16) if out else np.zeros((0, clip_.dim), np.float16)


@torch.inference_mode()
def encode_texts(clip_: LoadedClip, texts: Sequence[str]) -> np.ndarray:
    """Sentences -> L2-normalised text embeddings [T, D] float32 (long texts are truncated)."""
    if not texts:
        return np.zeros((0, clip_.dim), np.float32)
    if clip_.tokenize is not None:   # open_clip: its own tokenizer, the full context (some read every position)
        tokens = clip_.tokenize(list(texts)).to(clip_.device)
    else:
        import clip
        tokens = clip.tokenize(list(texts), truncate=True)
        # OpenAI's text transformer is causal and reads its output at the end-of-text token (the largest id), so
        # the padding after the longest text changes nothing: dropping it makes a short query ~8x cheaper.
        tokens = tokens[:, :int(tokens.argmax(dim=-1).max()) + 1].to(clip_.device)
    with _autocast(clip_.device):
        emb = clip_.model.encode_text(tokens).float()
    return torch.nn.functional.normalize(emb, dim=-1).cpu().numpy()


def class_text_embeddings(clip_: LoadedClip, names: Sequence[str],
                          templates: List[str] = TEMPLATES) -> np.ndarray:
    """Prompt-ensembled class embeddings [C, D] float16: mean of normalised template embeddings, renormalised."""
    out = np.zeros((len(names), clip_.dim), np.float32)
    for i, name in enumerate(names):
        emb = encode_texts(clip_, [fill(t, name) for t in templates]).mean(0)  # [D]
        out[i] = emb / max(np.linalg.norm(emb), 1e-12)
    return out.astype(np.float16)
