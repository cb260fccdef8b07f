"""Find CLIP weights on disk (names, files, random:<arch>) without importing torch unless needed."""
import hashlib
import os
import warnings
from typing import Dict

from clipvid.atomic import atomic_path
from clipvid.errors import UsageError

# Chatter from inside CLIP's loader that a user can do nothing about: clip imports pkg_resources,
# and clip.load tries torch.jit.load before reading a plain state dict. Silenced here, by message,
# because every path to `import clip` in clipvid goes through this module.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated", category=FutureWarning)

# Architectures for random:<arch>: CLIP(embed_dim, image_resolution, vision_layers, vision_width,
# vision_patch_size, context_length, vocab_size, transformer_width, transformer_heads, transformer_layers).
RANDOM_ARCHS: Dict[str, tuple] = {
    "tiny": (64, 224, 2, 64, 32, 77, 49408, 64, 1, 2),
    "ViT-B/32": (512, 224, 12, 768, 32, 77, 49408, 512, 8, 12),
    "ViT-B/16": (512, 224, 12, 768, 16, 77, 49408, 512, 8, 12),
    "ViT-L/14": (768, 224, 24, 1024, 14, 77, 49408, 768, 12, 12),
}
RANDOM_SEED = 0


class WeightsUnavailable(UsageError):
    """The requested --clip-model is unknown or its weights are not on this machine (and cannot be
    downloaded here): a usage error, exit 2."""


def home() -> str:
    """Where clipvid keeps generated files (random weights); $CLIPVID_HOME overrides."""
    return os.environ.get("CLIPVID_HOME", os.path.join(os.path.expanduser("~"), ".cache", "clipvid"))


def _random_weights_file(arch: str) -> str:
    if arch not in RANDOM_ARCHS:
        raise WeightsUnavailable(f"unknown random architecture {arch!r}; known: {', '.join(RANDOM_ARCHS)}")
    path = os.path.join(home(), "random", f"{arch.replace('/', '-')}-seed{RANDOM_SEED}.pt")
    if not os.path.exists(path):
        import torch
        from clip.model import CLIP
        os.makedirs(os.path.dirname(path), exist_ok=True)
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(RANDOM_SEED)
        state = CLIP(*RANDOM_ARCHS[arch]).state_dict()
        torch.random.set_rng_state(gen_state)
        with atomic_path(path) as tmp:   # several workers may race to make it; each write is whole
            torch.save(state, tmp)
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


def main(argv=None) -> int:
    """`python -m extract.weights SPEC`: print the weights file SPEC resolves to (exit 2 if none)."""
    import sys
    from clipvid.errors import EXIT_OK, exit_status
    args = sys.argv[1:] if argv is None else argv
    usage = "usage: python -m extract.weights SPEC   (a CLIP name, a weights file or random:<arch>)"
    if args[:1] in (["-h"], ["--help"]):
        print(usage)
        return EXIT_OK

    def show() -> int:
        if len(args) != 1:
            raise UsageError(f"python -m extract.weights takes one SPEC ({usage})")
        print(resolve_weights(args[0])[0])   # WeightsUnavailable is a usage error
        return EXIT_OK
    return exit_status(show, interrupted=lambda: "interrupted")


if __name__ == "__main__":
    raise SystemExit(main())
