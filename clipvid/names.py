"""Class names compared the one way: case, surrounding space, runs of space and `_` versus space do not count."""
from typing import Dict, Iterable, List


def class_key(name: str) -> str:
    """The form a class name is compared in: 'Playing_Violin ' and 'playing violin' are one class."""
    return " ".join(str(name).replace("_", " ").split()).casefold()


def name_index(names: Iterable[str]) -> Dict[str, int]:
    """{class_key: position} of `names`; where two names share a key the first one's position wins."""
    index: Dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(class_key(name), i)
    return index


def distinct_names(names: Iterable[str]) -> List[str]:
    """`names` in order, each class once (the first spelling of it is kept)."""
    seen: Dict[str, str] = {}
    for name in names:
        seen.setdefault(class_key(name), name)
    return list(seen.values())
