"""Load OpenAI CLIP (name, local file or random:<arch>) and embed images and texts with it."""
import hashlib
import os
from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np
import torch

from extract.prompts import TEMPLATES, fill

# Architectures for random:<arch>: CLIP(embed_dim, image_resolution, vision_layers, vision_width,
# vision_patch_size, context_length, vocab_size, transformer_width, transformer_heads, transformer_layers).
RANDOM_ARCHS: Dict[str, tuple] = {
    "tiny": (64, 224, 2, 64, 32, 77, 49408, 64, 1, 2),
    "ViT-B/32": (512, 224, 12, 768, 32, 77, 49408, 512, 8, 12),
    "ViT-B/16": (512, 224, 12, 768, 16, 77, 49408, 512, 8, 12),
    "ViT-L/14": (768, 224, 24, 1024, 14, 77, 49408, 768, 12, 12),
}
RANDOM_SEED = 0
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class WeightsUnavailable(RuntimeError):
    """The requested CLIP weights are not on this machine (and cannot be downloaded here)."""


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


def home() -> str:
    """Where clipvid keeps generated files (random weights); $CLIPVID_HOME overrides."""
    return os.environ.get("CLIPVID_HOME", os.path.join(os.path.expanduser("~"), ".cache", "clipvid"))


def _random_weights_file(arch: str) -> str:
    if arch not in RANDOM_ARCHS:
        raise WeightsUnavailable(f"unknown random architecture {arch!r}; known: {', '.join(RANDOM_ARCHS)}")
    path = os.path.join(home(), "random", f"{arch.replace('/', '-')}-seed{RANDOM_SEED}.pt")
    if not os.path.exists(path):
        from clip.model import CLIP
        os.makedirs(os.path.dirname(path), exist_ok=True)
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(RANDOM_SEED)
        state = CLIP(*RANDOM_ARCHS[arch]).state_dict()
        torch.random.set_rng_state(gen_state)
        tmp = f"{path}.tmp-{os.getpid()}"
        torch.save(state, tmp)
        os.replace(tmp, path)  # several workers may race to make it; each write is whole
    return path


def resolve_weights(spec: str) -> tuple:
    """(file path, is_random) for a model name, a weights file or random:<arch>; no download."""
    if spec.startswith("random:"):
        return _random_weights_file(spec.split(":", 1)[1]), True
    if os.path.isfile(spec):
        return spec, False
    import clip
    if spec in clip.available_models():
        url = clip.clip._MODELS[spec]
        root = os.path.join(os.path.expanduser("~"), ".cache", "clip")
        path = os.path.join(root, os.path.basename(url))
        if os.path.isfile(path):
            return path, False
        raise WeightsUnavailable(
            f"CLIP weights for {spec} are not in {root} and this machine cannot download them; "
            f"copy {os.path.basename(url)} there, pass --clip-model /path/to/weights.pt, "
            f"or use --clip-model random:{spec if spec in RANDOM_ARCHS else 'tiny'} for random weights")
    raise WeightsUnavailable(f"unknown CLIP model {spec!r}: not a file, not one of {clip.available_models()}, "
                             f"not random:<{'|'.join(RANDOM_ARCHS)}>")


def file_hash(path: str) -> str:
    """sha256 of a weights file (the same whatever device it is later loaded on)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def load_clip(spec: str, device: torch.device) -> LoadedClip:
    """Load CLIP through clip.load (the real loader) from a resolved local file."""
    import clip
    path, is_random = resolve_weights(spec)
    try:
        model, _ = clip.load(path, device=device, jit=False)
    except Exception as exc:  # a damaged or foreign file: say which and why, in one line
        raise WeightsUnavailable(f"cannot load CLIP weights from {path}: {str(exc).splitlines()[0][:200]}")
    model.eval()
    dim = int(model.text_projection.shape[1])
    return LoadedClip(model, spec, path, file_hash(path), is_random, dim,
                      int(model.visual.input_resolution), torch.device(device))


def _autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)


@torch.inference_mode()
def encode_frames(clip_: LoadedClip, frames: np.ndarray, batch_size: int = 100) -> np.ndarray:
    """uint8 frames [B, R, R, 3] (already resized and cropped) -> image embeddings [B, D] float16."""
    # Normalise in the frames' own channels-last layout, in place: about 3x faster than
    # permuting first (it matters for small models, where this is most of the time).
    shift = torch.tensor(CLIP_MEAN, device=clip_.device) * 255.0
    scale = 1.0 / (torch.tensor(CLIP_STD, device=clip_.device) * 255.0)
    dtype = clip_.model.visual.conv1.weight.dtype
    out = []
    for s in range(0, len(frames), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(frames[s:s + batch_size])).to(clip_.device)
        x = x.float().sub_(shift).mul_(scale)               # [b, R, R, 3]
        x = x.permute(0, 3, 1, 2).to(dtype)                 # [b, 3, R, R], channels-last memory
        with _autocast(clip_.device):
            out.append(clip_.model.encode_image(x).float().cpu())  # [b, D]
    return torch.cat(out).numpy().astype(np.float16) if out else np.zeros((0, clip_.dim), np.float16)


@torch.inference_mode()
def encode_texts(clip_: LoadedClip, texts: Sequence[str]) -> np.ndarray:
    """Sentences -> L2-normalised text embeddings [T, D] float32 (long texts are truncated)."""
    import clip
    if not texts:
        return np.zeros((0, clip_.dim), np.float32)
    tokens = clip.tokenize(list(texts), truncate=True).to(clip_.device)
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
