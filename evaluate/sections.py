"""Format-neutral report content (sections of text, tables, lists, figures) for HTML and Markdown."""
from dataclasses import dataclass, field
from typing import List, Sequence, Set


@dataclass
class Block:
    """One piece of a section; strings are raw user text, each renderer escapes them its own way."""
    kind: str                                   # text | list | table | figure
    text: str = ""
    items: List[str] = field(default_factory=list)
    headers: List[str] = field(default_factory=list)
    rows: List[List[str]] = field(default_factory=list)
    highlight: Set[int] = field(default_factory=set)
    numeric: bool = True                        # columns after the first are right-aligned numbers
    figure: str = ""                            # figure file name
    css: str = ""


@dataclass
class Section:
    title: str
    anchor: str
    blocks: List[Block] = field(default_factory=list)


def text(s: str) -> Block:
    return Block("text", text=s)


def bullets(items: Sequence[str], css: str = "") -> Block:
    return Block("list", items=[str(x) for x in items], css=css)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], highlight: Sequence[int] = (),
          numeric: bool = True) -> Block:
    return Block("table", headers=[str(h) for h in headers], rows=[[str(c) for c in r] for r in rows],
                 highlight=set(highlight), numeric=numeric)


def figure(name: str, caption: str) -> Block:
    return Block("figure", figure=name, text=caption)
