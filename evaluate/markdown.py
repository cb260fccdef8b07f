"""Render report sections as Markdown, figures linked as the PNG files written beside it."""
import html
from typing import List, Optional

from evaluate.sections import Block, Section


def md_escape(text: object) -> str:
    """Markdown passes raw HTML through, so user strings are HTML-escaped; pipes would split table cells."""
    return html.escape(" ".join(str(text).split()), quote=False).replace("|", "\\|")


def _block(block: Block) -> List[str]:
    if block.kind == "text":
        return [md_escape(block.text), ""]
    if block.kind == "list":
        return [f"- {md_escape(x)}" for x in block.items] + [""]
    if block.kind == "table":
        lines = ["| " + " | ".join(md_escape(h) for h in block.headers) + " |",
                 "|" + "|".join(["---"] + ["---:" if block.numeric else "---"] * (len(block.headers) - 1)) + "|"]
        for i, row in enumerate(block.rows):
            cells = [md_escape(c) for c in row]
            if i in block.highlight:
                cells = [f"**{c}**" if c else c for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
        return lines + [""]
    if block.kind == "figure":
        return [f"![{md_escape(block.text)}]({block.figure})", ""]
    raise ValueError(f"unknown block kind {block.kind}")


def render_markdown(title: str, sections: List[Section], banner: Optional[str] = None) -> str:
    out = [f"# {md_escape(title)}", ""]
    if banner:
        out += [f"> **{md_escape(banner)}**", ""]
    for sec in sections:
        out += [f"## {md_escape(sec.title)}", ""]
        for b in sec.blocks:
            out += _block(b)
    return "\n".join(out).rstrip() + "\n"
