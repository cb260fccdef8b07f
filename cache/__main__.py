"""`python -m cache info|validate|compact|migrate FILE`: describe, check, compact or upgrade a clipvid cache."""
import argparse
import json
import sys
from collections import Counter

from clipvid.errors import EXIT_OK, EXIT_PARTIAL, CacheError, exit_status
from clipvid.helptext import add_examples
from clipvid.options import Parser, add_quiet
from cache.reader import open_cache
from cache.validate import validate


def info(path: str, as_json: bool = False) -> int:
    with open_cache(path) as r:
        per_class = Counter(int(x) for x in r.labels)
        splits = Counter(str(s) or "(none)" for s in r.splits)
        out = {
            "file": path, "videos": r.num_videos, "frames": r.frames, "dim": r.dim,
            "clip_model": r.clip_model, "weights_hash": r.settings.get("weights_hash"),
            "random_weights": r.random_weights, "schema_version": r.settings.get("schema_version"),
            "sampler": json.loads(r.settings.get("sampler", "{}")), "fingerprint": r.fingerprint,
            "classes": {n: per_class.get(i, 0) for i, n in enumerate(r.class_names)},
            "unlabelled": per_class.get(-1, 0), "splits": dict(splits),
            "source_root": r.settings.get("source_root") or None,
            "captions": sum(1 for c in r.captions if c),
            "failures": [{"id": i, "reason": why} for i, why in r.failures],
        }
    if as_json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return EXIT_OK
    if out["random_weights"]:
        print("!!! RANDOM CLIP WEIGHTS: embeddings carry no learned meaning; accuracies measure the heads only !!!")
    print(f"cache      {path}")
    print(f"model      {out['clip_model']}  (weights {str(out['weights_hash'])[:16]}, D={out['dim']})")
    print(f"frames     N={out['frames']}  sampler {out['sampler']}")
    print(f"source     {out['source_root'] or '(not recorded)'}")
    print(f"videos     {out['videos']} cached, {len(out['failures'])} failed, {out['unlabelled']} unlabelled, "
          f"{out['captions']} with a caption")
    print(f"splits     " + ", ".join(f"{k}: {v}" for k, v in sorted(splits.items())))
    print(f"classes    {len(out['classes'])}")
    for name, count in out["classes"].items():
        print(f"  {count:6d}  {name}")
    for fail in out["failures"][:50]:
        print(f"failed     {fail['id']}: {fail['reason']}")
    if len(out["failures"]) > 50:
        print(f"failed     ... and {len(out['failures']) - 50} more (--json lists all)")
    return EXIT_OK


def migrate(path: str, progress: bool = True) -> int:
    """Upgrade an older cache; map a renamed one under its new name; else say it is current."""
    import os
    from cache.layout import sidecar
    from cache.manifest import mapped_folder
    from cache.reader import read_settings
    from cache.schema import SCHEMA_VERSION
    from cache.writer import CacheWriter
    with open_cache(path) as r:
        old = r.schema_version
    renamed = old == SCHEMA_VERSION and mapped_folder(path) not in (None, os.path.basename(sidecar(path)))
    if old == SCHEMA_VERSION and not renamed:
        print(f"{path}: already schema {SCHEMA_VERSION}")
        return EXIT_OK
    CacheWriter(path, read_settings(path), progress=progress).close()
    print(f"{path}: mapped to {os.path.basename(sidecar(path))}/" if renamed else f"{path}: schema {old} -> {SCHEMA_VERSION}")
    return EXIT_OK


EPILOG = "exit status: 0 ok; 1 validate found problems (listed); 2 usage error; 3 missing or unusable cache."
EXAMPLES = ["python -m cache info out/cache/demo-random_tiny-N100.h5", "python -m cache info cache.h5 --json > cache.json",
            "python -m cache validate cache.h5 && echo whole"]


def main(argv=None) -> int:
    ap = add_examples(Parser(prog="python -m cache", description="Describe, check, compact or "
                                              "upgrade a clipvid cache.", epilog=EPILOG), EXAMPLES)
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{info,validate,compact,migrate}")
    p_info = add_examples(sub.add_parser("info", help="counts, settings and failures of a cache", epilog=EPILOG),
                          EXAMPLES)
    p_info.add_argument("file", help="a cache written by python -m extract (.h5)")
    p_info.add_argument("--json", action="store_true", help="print JSON instead of text")
    p_val = add_examples(sub.add_parser("validate", help="exit 0 only when the cache is whole and consistent",
                                        epilog=EPILOG), EXAMPLES)
    p_val.add_argument("file", help="a cache written by python -m extract (.h5)")
    rewrites = {   # the commands that write a cache: name -> (help, examples)
        "compact": ("rewrite the live rows into fresh shards (drops replaced videos' old frames, merges small "
                    "shards; needs free disk for one copy)",
                    ["python -m cache compact cache.h5", "python -m cache compact cache.h5 && python -m cache info cache.h5"]),
        "migrate": ("upgrade a cache of an older clipvid (schema 1 or 2) to the current plain-HDF5 layout, once (an "
                    "append does it too), or map a renamed cache again",
                    ["python -m cache migrate old.h5", "python -m cache migrate old.h5 && python -m cache validate old.h5"]),
    }
    for name, (text, examples) in rewrites.items():
        p = add_examples(sub.add_parser(name, help=text, epilog=EPILOG), examples)
        p.add_argument("file", help="a cache written by python -m extract (.h5)")
        add_quiet(p)
    args = ap.parse_args(argv)
    return exit_status(lambda: _command(args), interrupted=lambda: "interrupted: nothing more was written")


def _command(args: argparse.Namespace) -> int:
    try:
        if args.cmd == "info":
            return info(args.file, args.json)
        if args.cmd == "migrate":
            return migrate(args.file, progress=not args.quiet)
        if args.cmd == "compact":
            from cache.compact import compact
            before, after = compact(args.file, progress=not args.quiet)
            print(f"{args.file}: {before} shards -> {after}" if before != after else f"{args.file}: already compact")
            return EXIT_OK
        problems = validate(args.file)
    except (BrokenPipeError, CacheError):
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:  # HDF5 could not read a damaged part
        raise CacheError(args.file, f"damaged cache: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    for p in problems:
        print(f"{args.file}: {p}", file=sys.stderr)
    if problems:
        return EXIT_PARTIAL
    print(f"{args.file}: ok")
    return EXIT_OK

if __name__ == "__main__":
    sys.exit(main())
