"""timeline.html: per video a coloured strip of labelled segments, thumbnails, top-k and a subtitled player."""
import base64
import colorsys
import html
import os
import pathlib
from typing import Any, Dict, List, Optional

from clipvid.atomic import write_text
from clipvid.progress import progress as progress_display

from predict import outputs as O
from predict.score import VideoResult

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:16px 24px 48px}
.banner{background:#c62828;color:#fff;font-weight:700;padding:14px 24px;font-size:18px;text-align:center}
section.video{background:#fff;border:1px solid #ddd;margin:14px 0;padding:10px 14px}
.strip{display:flex;height:30px;border:1px solid #999;margin:6px 0 2px}
.seg{overflow:hidden;white-space:nowrap;font-size:12px;line-height:30px;padding:0 3px;color:#000}
.axis{display:flex;justify-content:space-between;font-size:11px;color:#555}
.thumbs{display:flex;gap:6px;flex-wrap:wrap;margin:6px 0}.thumbs figure{margin:0;font-size:11px;width:160px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{border:1px solid #d4d4d4;padding:2px 6px}
td.num{text-align:right;font-variant-numeric:tabular-nums}.note{color:#555;font-size:13px}
code{background:#f0f0f0;padding:0 3px;word-break:break-all}video{max-width:480px;display:block}
"""


def esc(text: object) -> str:
    """Escape a user string for HTML text and attribute values (quotes included)."""
    return html.escape(str(text), quote=True)


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def colour(index: int) -> str:
    """A light colour per class index (golden-ratio hues, so neighbours differ)."""
    r, g, b = colorsys.hls_to_rgb((index * 0.618034) % 1.0, 0.78, 0.65)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def _strip(v: VideoResult, names: List[str]) -> str:
    if not v.segments or v.duration <= 0:
        return '<p class="note">no timeline (the video has no known duration)</p>'
    cells = []
    for s in v.segments:
        width = 100.0 * max(s.end_s - s.start_s, 0.0) / v.duration
        name = names[s.label]
        tip = f"{name}: {s.start_s:.2f}-{s.end_s:.2f} s, {s.score:.2f}"
        cells.append(f'<div class="seg" style="width:{width:.3f}%;background:{colour(s.label)}" '
                     f'title="{esc(tip)}">{esc(name)}</div>')
    axis = "".join(f"<span>{t:.1f} s</span>" for t in (0.0, v.duration / 2, v.duration))
    return f'<div class="strip">{"".join(cells)}</div><div class="axis">{axis}</div>'


def _thumbs(v: VideoResult, names: List[str], path: Optional[str]) -> str:
    if path is None or not v.segments:
        return ""
    from extract.thumbs import grab_frame
    figs = []
    for s in v.segments:
        mid = (s.start_s + s.end_s) / 2
        jpg = grab_frame(path, mid, width=160)
        img = f'<img alt="{esc(names[s.label])} at {mid:.2f}s" src="{_data_uri(jpg, "image/jpeg")}" width="160">' \
            if jpg else '<span class="note">no thumbnail</span>'
        figs.append(f"<figure>{img}<figcaption>{esc(names[s.label])} ({mid:.1f} s)</figcaption></figure>")
    return f'<div class="thumbs">{"".join(figs)}</div>'


def _player(v: VideoResult, names: List[str], path: Optional[str]) -> str:
    if path is None:
        return '<p class="note">video file not found; no player</p>'
    track = ""
    if v.segments:
        vtt = O.vtt_text(v.segments, names).encode("utf-8")
        track = (f'<track kind="subtitles" label="predicted action" srclang="en" default '
                 f'src="{_data_uri(vtt, "text/vtt")}">')
    return (f'<video controls preload="metadata" src="{esc(pathlib.Path(path).as_uri())}">{track}</video>')


def video_file(root: str, vid: str) -> Optional[str]:
    """The file of a video id: an absolute id as it is, else under root (never outside it); None if absent."""
    path = vid if os.path.isabs(vid) else os.path.join(root, O.safe_relpath(vid))
    return os.path.abspath(path) if os.path.isfile(path) else None


def _video(v: VideoResult, names: List[str], root: str) -> str:
    path = video_file(root, v.id)
    rows = "".join(f'<tr><td class="num">{k}</td><td>{esc(n)}</td><td class="num">{p:.4f}</td></tr>'
                   for k, (n, p) in enumerate(v.ranked, 1))
    label = f" &middot; labelled <b>{esc(v.label)}</b>" if v.label else ""
    return (f'<section class="video"><h2><code>{esc(v.id)}</code></h2><p class="note">{v.duration:.2f} s{label}</p>'
            f"{_strip(v, names)}{_thumbs(v, names, path)}<table><thead><tr><th>#</th><th>class</th>"
            f"<th>probability</th></tr></thead><tbody>{rows}</tbody></table>{_player(v, names, path)}</section>")


def render(summary: Dict[str, Any], videos: List[VideoResult], root: str, progress: bool = False) -> str:
    """The whole page; every user string (ids, class names, paths) is escaped here."""
    names = summary["class_names"]
    title = f"clipvid predictions: {summary['head'] or 'zero-shot'}"
    banner = ('<div class="banner" role="alert">RANDOM CLIP WEIGHTS: these predictions carry no learned '
              "meaning.</div>") if summary["random_weights"] else ""
    acc = summary["accuracy"]
    facts = (f"{summary['counts']['videos']} videos, {summary['classes']} classes ({esc(summary['mode'])}); "
             f"cache <code>{esc(summary['cache'])}</code>, CLIP {esc(summary['clip_model'])}, N={summary['frames']}")
    if acc["n"]:
        facts += f"; top-1 {acc['top1']:.3f} on {acc['n']} labelled videos"
    shown = len(videos)
    if shown < summary["counts"]["videos"]:
        facts += f"; the first {shown} videos are shown (see predictions.csv and timeline.csv for all)"
    body = [_video(v, names, root) for v in progress_display(videos, desc="timeline page", unit="video", quiet=not progress)]
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{banner}<main>"
            f"<h1>{esc(title)}</h1><p class=\"note\">{facts}</p>{''.join(body)}</main></body></html>\n")


def write_page(out_dir: str, summary: Dict[str, Any], videos: List[VideoResult], root: str,
               progress: bool = False) -> str:
    """Write PRED_DIR/timeline.html atomically; returns its path."""
    path = os.path.join(out_dir, O.PAGE)
    write_text(path, render(summary, videos, root, progress))
    return path
