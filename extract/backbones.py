"""Backbones beside OpenAI's CLIP: open_clip specs, each model's own preprocessing, weights and tokenizer."""
import contextlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from typing import Callable, Tuple

from clipvid.atomic import atomic_path
from extract.weightbase import RANDOM_SEED, UnknownModel, WeightsUnavailable, home, offline

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
OPEN_CLIP = "open_clip:"
RANDOM_OPEN_CLIP = "random:open_clip:"
# Small architectures shipped with clipvid (extract/open_clip_configs) for tests and benchmarks: their
# tokenizer is open_clip's own, and the -squash one has SigLIP's preprocessing.
CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "open_clip_configs")
SHIPPED_PREPROCESS = {"clipvid-tiny-squash": {"resize_mode": "squash", "mean": (0.5,) * 3, "std": (0.5,) * 3}}


@dataclass(frozen=True)
class Preprocess:
    """How a backbone turns a picture into its input: the geometry and the normalisation."""
    size: int = 224
    resize: str = "crop"            # "crop": short side to `size`, centre square (OpenAI CLIP, most open_clip);
                                    # "squash": the whole frame to size x size, aspect lost (SigLIP)
    interpolation: str = "bicubic"  # or "bilinear"
    mean: Tuple[float, float, float] = CLIP_MEAN
    std: Tuple[float, float, float] = CLIP_STD

    @property
    def geometry(self):
        """The decoder's extract.geometry.Geometry of this preprocessing (what frames are converted to)."""
        from extract.geometry import Geometry
        return Geometry(self.size, self.resize, self.interpolation)

    def settings(self) -> str:
        """The cache's `preprocess` attribute: JSON, the same text for the same preprocessing."""
        return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()},
                          sort_keys=True)


OPENAI = Preprocess()


@dataclass(frozen=True)
class OpenClipSpec:
    """open_clip:ARCH/PRETRAINED, open_clip:ARCH@/path/to/checkpoint or random:open_clip:ARCH[/PRETRAINED]."""
    arch: str
    tag: str = ""       # a pretrained tag (its weights, or only its preprocessing when random)
    file: str = ""      # a local checkpoint
    random: bool = False


def is_open_clip(spec: str) -> bool:
    return spec.startswith(OPEN_CLIP) or spec.startswith(RANDOM_OPEN_CLIP)


def parse_open_clip(spec: str) -> OpenClipSpec:
    """Split an open_clip spec; WeightsUnavailable naming what is wrong with it."""
    random = spec.startswith(RANDOM_OPEN_CLIP)
    rest = spec[len(RANDOM_OPEN_CLIP if random else OPEN_CLIP):]
    arch, file, tag = rest, "", ""
    if "@" in rest and not random:
        arch, file = rest.split("@", 1)
    elif "/" in rest:
        arch, tag = rest.split("/", 1)
    import open_clip
    _register_shipped()
    if arch not in open_clip.list_models():
        raise UnknownModel(f"{spec}: open_clip has no architecture {arch!r} (python -c \"import open_clip; "
                                 f"print(open_clip.list_models())\" lists them)")
    if tag and not open_clip.get_pretrained_cfg(arch, tag):
        known = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
        raise UnknownModel(f"{spec}: open_clip has no pretrained {tag!r} for {arch} (known: {known})")
    if not random and not tag and not file:
        raise UnknownModel(f"{spec}: say which weights: open_clip:{arch}/PRETRAINED, open_clip:{arch}@/path "
                                 f"or random:open_clip:{arch}")
    if file and not os.path.isfile(file):
        raise WeightsUnavailable(f"{spec}: no such checkpoint file {file}")
    return OpenClipSpec(arch, tag, file, random)


@contextlib.contextmanager
def quiet_open_clip():
    """open_clip logs through logging's module functions, which give the root logger a handler on first
    use (after which Dask's INFO lines reach stderr too), and tells what a user cannot act on ("model
    initialized randomly"): its chatter is held back and the root logger left as it was."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)
        root.handlers[:] = handlers


def _register_shipped() -> None:
    import open_clip
    if "clipvid-tiny" not in open_clip.list_models():
        open_clip.add_model_config(CONFIGS)


def preprocess_of(spec: str) -> Preprocess:
    """The preprocessing `spec`'s model was trained with (OpenAI's for every OpenAI CLIP spec)."""
    if not is_open_clip(spec):
        return OPENAI
    import open_clip
    s = parse_open_clip(spec)
    cfg = open_clip.get_model_config(s.arch)
    size = cfg["vision_cfg"].get("image_size", 224)
    tag = s.tag or (open_clip.list_pretrained_tags_by_model(s.arch) or [""])[0] if s.random else s.tag
    pre = dict(SHIPPED_PREPROCESS.get(s.arch, {}), **(open_clip.get_pretrained_cfg(s.arch, tag) if tag else {}))
    mode = pre.get("resize_mode", "shortest")
    if mode not in ("shortest", "squash"):
        raise UnknownModel(f"{spec}: resize mode {mode!r} (letterboxing) is not supported; "
                                 f"clipvid samples centre-cropped or squashed frames")
    return Preprocess(int(size if isinstance(size, int) else size[0]), "squash" if mode == "squash" else "crop",
                      pre.get("interpolation", "bicubic"), tuple(pre.get("mean", CLIP_MEAN)),
                      tuple(pre.get("std", CLIP_STD)))


def open_clip_weights(spec: str) -> str:
    """The local checkpoint of an open_clip spec: a file, generated random weights, or the pretrained
    weights from open_clip's hub (downloaded into its cache on first use, with a progress bar)."""
    s = parse_open_clip(spec)
    if s.file:
        return s.file
    if s.random:
        return _random_weights(s.arch)
    from open_clip import get_pretrained_cfg, pretrained
    cfg = get_pretrained_cfg(s.arch, s.tag)
    try:
        return pretrained.download_pretrained(cfg)   # the hub's own progress bar; its logging left alone
    except Exception as exc:   # offline, refused, timed out: one line, what to copy where
        from huggingface_hub.constants import HF_HUB_CACHE
        where = cfg.get("hf_hub") or cfg.get("url", "?")
        reason = "offline" if offline() else " ".join(str(exc).split())[:160]
        raise WeightsUnavailable(f"open_clip weights {s.arch}/{s.tag} could not be had ({reason}): run once on a "
                                 f"machine with internet to fill {HF_HUB_CACHE} and copy it here, or download "
                                 f"hf-hub {where} and pass --clip-model open_clip:{s.arch}@/path/to/checkpoint")


def _random_weights(arch: str) -> str:
    """Random weights for an open_clip architecture, made once with a fixed seed and kept as a file."""
    path = os.path.join(home(), "random", f"open_clip-{arch}-seed{RANDOM_SEED}.pt")
    if not os.path.exists(path):
        import open_clip
        import torch
        os.makedirs(os.path.dirname(path), exist_ok=True)
        state = torch.random.get_rng_state()
        torch.manual_seed(RANDOM_SEED)
        try:
            with quiet_open_clip():
                weights = open_clip.create_model(arch, pretrained=None).state_dict()
        finally:
            torch.random.set_rng_state(state)
        with atomic_path(path) as tmp:   # several workers may race to make it; each write is whole
            torch.save(weights, tmp)
    return path


def tokenizer_of(spec: str) -> Callable:
    """open_clip's tokenizer for the spec's architecture; WeightsUnavailable (one line) when it must be
    downloaded and cannot be (Hugging Face tokenizers: SigLIP, MetaCLIP 2, ...)."""
    import open_clip
    s = parse_open_clip(spec)
    text_cfg = open_clip.get_model_config(s.arch).get("text_cfg", {})
    hf_name = text_cfg.get("hf_tokenizer_name", "")
    try:
        with quiet_open_clip():
            return open_clip.get_tokenizer(s.arch)
    except Exception as exc:
        reason = "offline" if offline() else " ".join(str(exc).split())[:160]
        raise WeightsUnavailable(f"{spec}: the tokenizer of {s.arch} (Hugging Face {hf_name or '?'}) is not on this "
                                 f"machine and cannot be had ({reason}); run once with internet to cache it")


def load_open_clip(spec: str, path: str, device) -> Tuple[object, int, Callable]:
    """(model in eval mode on `device`, embedding size, tokenizer) from a resolved checkpoint."""
    import open_clip
    s = parse_open_clip(spec)
    tokenizer = tokenizer_of(spec)
    cfg = open_clip.get_pretrained_cfg(s.arch, s.tag) if s.tag and not s.random else {}
    try:
        with quiet_open_clip():
            model = open_clip.create_model(s.arch, pretrained=path, device=device,
                                           force_quick_gelu=bool(cfg.get("quick_gelu", False)))
    except Exception as exc:   # a damaged or foreign checkpoint: say which and why, in one line
        raise WeightsUnavailable(f"cannot load open_clip {s.arch} from {path}: {' '.join(str(exc).split())[:200]}")
    model.eval()
    return model, int(open_clip.get_model_config(s.arch)["embed_dim"]), tokenizer


def cache_name(spec: str) -> str:
    """The file name of a backbone's cache in an --out-dir: its spec with anything unsafe made '_'."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", spec).strip("._") + ".h5"
