"""Render report sections as one self-contained HTML page: inline CSS, images as data: URIs."""
import base64
import html
from typing import Dict, List, Optional

from evaluate.sections import Block, Section

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:16px 24px 48px}
.banner{background:#c62828;color:#fff;font-weight:700;padding:14px 24px;font-size:18px;text-align:center}
h1{font-size:26px;margin:18px 0 4px}h2{font-size:20px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0 12px;font-size:14px;background:#fff}
th,td{border:1px solid #d4d4d4;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.best td{background:#fff7d6;font-weight:600}
figure{margin:8px 0 16px}figure img{max-width:100%;border:1px solid #ddd;background:#fff}
figcaption{font-size:13px;color:#555}.note{color:#555;font-size:14px}
ul.warn li{color:#8a4b00}code{background:#f0f0f0;padding:0 3px;word-break:break-all}
"""


def esc(text: object) -> str:
    """Escape any user string for HTML text and attribute values (quotes included)."""
    return html.escape(str(text), quote=True)


def data_uri(data: bytes, mime: str = "image/png") -> str:
    """An image inlined, so the page needs no other file."""
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _table(block: Block) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in block.headers)
    body = []
    for i, row in enumerate(block.rows):
        cls = ' class="best"' if i in block.highlight else ""
        cells = "".join(f'<td class="num">{esc(c)}</td>' if j > 0 and block.numeric else f"<td>{esc(c)}</td>"
                        for j, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _block(block: Block, figures: Dict[str, bytes]) -> str:
    if block.kind == "text":
        return f'<p class="note">{esc(block.text)}</p>'
    if block.kind == "list":
        items = "".join(f"<li>{esc(x)}</li>" for x in block.items)
        return f'<ul class="{esc(block.css)}">{items}</ul>'
    if block.kind == "table":
        return _table(block)
    if block.kind == "figure":
        png = figures.get(block.figure)
        if png is None:
            return ""
        return (f'<figure><img alt="{esc(block.text)}" src="{data_uri(png)}">'
                f"<figcaption>{esc(block.text)}</figcaption></figure>")
    raise ValueError(f"unknown block kind {block.kind}")


def render_html(title: str, sections: List[Section], figures: Dict[str, bytes],
                banner: Optional[str] = None) -> str:
    """The whole page; every string from sections is escaped here, nowhere else."""
    parts = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width,initial-scale=1">',
             f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"]
    if banner:
        parts.append(f'<div class="banner" role="alert">{esc(banner)}</div>')
    parts.append(f"<main><h1>{esc(title)}</h1>")
    for sec in sections:
        parts.append(f'<section><h2 id="{esc(sec.anchor)}">{esc(sec.title)}</h2>')
        parts.extend(_block(b, figures) for b in sec.blocks)
        parts.append("</section>")
    parts.append("</main></body></html>\n")
    return "".join(parts)
