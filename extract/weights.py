"""Find CLIP weights (names, files, random:<arch>), downloading a named model's on first use."""
import hashlib
import json
import os
import shutil
import socket
import sys
import warnings
from typing import Dict, Optional

from clipvid.atomic import atomic_path
from clipvid.errors import UsageError
from extract.weightbase import OFFLINE_ENV, RANDOM_SEED, UnknownModel, WeightsUnavailable, home, offline

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

# Tests only: JSON {model name: URL} replacing clip's own address; the URL's last-but-one part is the
# file's sha256, as in clip's addresses, so clip's downloader checks it the same way.
TEST_URLS_ENV = "CLIPVID_TEST_WEIGHTS_URLS"
CONNECT_TIMEOUT = 15.0   # seconds a connection (and each read) may stall before a download gives up


def _random_weights_file(arch: str) -> str:
    if arch not in RANDOM_ARCHS:
        raise UnknownModel(f"unknown random architecture {arch!r}; known: {', '.join(RANDOM_ARCHS)}")
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
    if spec.startswith("open_clip:") or spec.startswith("random:open_clip:"):
        from extract.backbones import open_clip_weights
        return open_clip_weights(spec), spec.startswith("random:")
    if spec.startswith("random:"):
        return _random_weights_file(spec.split(":", 1)[1]), True
    if os.path.isfile(spec):
        return spec, False
    import clip
    if spec in clip.available_models():
        return _openai_weights(spec), False
    raise UnknownModel(f"unknown CLIP model {spec!r}: not a file, not one of {clip.available_models()}, "
                             f"not random:<{'|'.join(RANDOM_ARCHS)}>, not open_clip:ARCH/PRETRAINED")


def check_available(spec: str) -> Optional[str]:
    """Resolve (and download) a spec's weights and, for open_clip, its tokenizer, before any work starts;
    raises WeightsUnavailable. Returns the weights file."""
    from extract.backbones import is_open_clip, preprocess_of, tokenizer_of
    if is_open_clip(spec):   # first: a missing tokenizer fails before any weights are made or fetched
        preprocess_of(spec)
        tokenizer_of(spec)
    return resolve_weights(spec)[0]


def clip_root() -> str:
    """Where clip.load keeps OpenAI's weights (and so where they are looked for and downloaded)."""
    return os.path.join(os.path.expanduser("~"), ".cache", "clip")


def _openai_weights(name: str) -> str:
    """The local file of OpenAI model `name`, downloaded by clip's own downloader (checksum checked)
    into clip's usual folder on first use; WeightsUnavailable in one line when it cannot be had."""
    import clip
    url = json.loads(os.environ.get(TEST_URLS_ENV) or "{}").get(name) or clip.clip._MODELS[name]
    root, base = clip_root(), os.path.basename(url)
    path = os.path.join(root, base)
    if os.path.isfile(path):
        return path
    hint = (f"copy {base} (from {url}) to {root}, pass --clip-model /path/to/{base}, "
            f"or use --clip-model random:{name if name in RANDOM_ARCHS else 'tiny'} for random weights")
    if offline():
        raise WeightsUnavailable(f"CLIP weights for {name} are not in {root} and {OFFLINE_ENV} is set: {hint}")
    # Into a private folder, then renamed: a download cut short never looks like the weights.
    part = os.path.join(root, f".partial-{os.getpid()}")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(CONNECT_TIMEOUT)   # clip's downloader opens the URL with the default
    try:
        print(f"downloading CLIP weights for {name} to {path}", file=sys.stderr)
        os.replace(clip.clip._download(url, part), path)
    except Exception as exc:   # offline, refused, timed out, checksum: one line, what to copy where
        reason = " ".join(str(getattr(exc, "reason", None) or exc).split())[:160] or type(exc).__name__
        raise WeightsUnavailable(f"CLIP weights for {name} could not be downloaded ({reason}): {hint}")
    finally:
        socket.setdefaulttimeout(previous)
        shutil.rmtree(part, ignore_errors=True)
    return path


def file_hash(path: str) -> str:
    """sha256 of a weights file (the same whatever device it is later loaded on)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def main(argv=None) -> int:
    """`python -m extract.weights SPEC`: print the weights file SPEC resolves to, downloading it if
    needed (exit 3 if it cannot be had, 2 if SPEC names no model)."""
    from clipvid.errors import EXIT_OK, exit_status
    args = sys.argv[1:] if argv is None else argv
    usage = ("usage: python -m extract.weights SPEC   (a CLIP name, a weights file, random:<arch>, "
             "open_clip:ARCH/PRETRAINED)\nexample: python -m extract.weights ViT-B/32   "
             "(downloads it into ~/.cache/clip on first use)")
    if args[:1] in (["-h"], ["--help"]):
        print(usage)
        return EXIT_OK

    def show() -> int:
        if len(args) != 1:
            raise UsageError(f"python -m extract.weights takes one SPEC ({usage.splitlines()[0]})")
        print(resolve_weights(args[0])[0])
        return EXIT_OK
    return exit_status(show, interrupted=lambda: "interrupted")


if __name__ == "__main__":
    raise SystemExit(main())
