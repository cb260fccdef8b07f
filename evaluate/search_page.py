"""HTML for search results: the self-contained --html page and the served search page; every user string escaped."""
from typing import List, Optional
from urllib.parse import quote, urlencode

from evaluate.html import CSS, data_uri, esc
from evaluate.searcher import Hit

RANDOM_BANNER = "RANDOM CLIP WEIGHTS: these scores carry no learned meaning."
PAGE_CSS = CSS + """
form.search{margin:12px 0 18px}form.search input[type=text]{width:60%;font-size:18px;padding:6px}
form.search button{font-size:18px;padding:6px 14px}video{max-width:360px;background:#000}
.hit img{display:block;border:1px solid #ddd}.progress{font-size:18px;color:#8a4b00}
"""
HEAD = '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'


def _banner(text: str) -> str:
    return f'<div class="banner" role="alert">{esc(text)}</div>' if text else ""


def render_page(query: str, hits: List[Hit], thumbs: List[Optional[bytes]], source: str, banner: str = "") -> str:
    """A self-contained results page (thumbnails inlined)."""
    rows = []
    for hit, jpg in zip(hits, thumbs):
        img = (f'<img alt="{esc(hit.id)} at {hit.time:.2f}s" src="{data_uri(jpg, "image/jpeg")}" width="320">'
               if jpg else '<span class="note">no thumbnail (video file not found or unreadable)</span>')
        rows.append(f'<tr><td class="num">{hit.rank}</td><td>{img}</td><td><code>{esc(hit.id)}</code>'
                    f'<br>{esc(hit.label)}<br><span class="note">{esc(hit.caption)}</span></td>'
                    f'<td class="num">{hit.score:.4f}</td><td class="num">{hit.time:.2f} s</td></tr>')
    return (f"{HEAD}<title>search: {esc(query)}</title><style>{CSS}</style></head><body>{_banner(banner)}<main>"
            f"<h1>Search: {esc(query)}</h1><p class=\"note\">ranked by cosine over {esc(source)}; "
            "the thumbnail is the frame that matches the query best</p>"
            "<table><thead><tr><th>#</th><th>best moment</th><th>video</th><th>score</th><th>time</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></main></body></html>\n")


def video_url(row: int, vid: str) -> str:
    """Where the server serves the file of the cache's video at `row`, whose id is `vid` (a path relative
    to the source root): the server answers only when both name the same video of the cache."""
    return f"/video/{int(row)}/" + quote(vid, safe="/")


def _served_hit(hit: Hit) -> str:
    t = f"{max(0.0, hit.time):.2f}"
    thumb = "/thumb?" + urlencode({"row": hit.row, "t": t})
    return (f'<tr class="hit"><td class="num">{hit.rank}</td>'
            f'<td><img alt="best moment of {esc(hit.id)} at {t} s" src="{esc(thumb)}" width="320"></td>'
            f'<td><code class="vid">{esc(hit.id)}</code><br><span class="label">{esc(hit.label)}</span>'
            f'<br><span class="note caption">{esc(hit.caption)}</span></td>'
            f'<td class="num score">{hit.score:.4f}</td><td class="num">{t} s</td>'
            f'<td><video controls preload="metadata" poster="{esc(thumb)}" src="{esc(video_url(hit.row, hit.id))}#t={t}"></video></td></tr>')


def served_page(query: str, hits: Optional[List[Hit]], source: str, videos: int, banner: str = "",
                loading: str = "") -> str:
    """The page the server answers for GET /?q=...: a search box, then the hits (or the loading progress)."""
    box = (f'<form class="search" method="get" action="/"><input type="text" name="q" value="{esc(query)}" '
           'placeholder="describe a moment, e.g. a person playing the violin" autofocus>'
           '<button type="submit">Search</button></form>')
    refresh = '<meta http-equiv="refresh" content="1">' if loading else ""
    if loading:
        body = f'<p class="progress" id="progress">{esc(loading)}</p>'
    elif hits is None:
        body = f'<p class="note">{videos:,} videos, ranked by cosine over {esc(source)}.</p>'
    elif not hits:
        body = '<p class="note">no results</p>'
    else:
        body = (f'<p class="note">{len(hits)} best of {videos:,} videos for <q>{esc(query)}</q>, ranked by cosine '
                f'over {esc(source)}; the thumbnail is the best-matching moment and the player starts there.</p>'
                '<table id="hits"><thead><tr><th>#</th><th>best moment</th><th>video</th><th>score</th><th>time</th>'
                f'<th>play</th></tr></thead><tbody>{"".join(_served_hit(h) for h in hits)}</tbody></table>')
    title = f"search: {esc(query)}" if query else "clipvid search"
    return (f"{HEAD}{refresh}<title>{title}</title><style>{PAGE_CSS}</style></head><body>{_banner(banner)}<main>"
            f"<h1>clipvid search</h1>{box}{body}</main></body></html>\n")
