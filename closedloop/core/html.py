"""Self-contained HTML pages: figures embedded, no script, no request leaving the page.

The comparison and the daily report are read from a file, a static web server or an attachment,
often where there is no network, so everything a page shows travels inside it.
"""

from __future__ import annotations

import base64
from html import escape

BASE_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem auto; max-width: 72rem;
       padding: 0 1rem; color: #222; line-height: 1.4; }
h1 { font-size: 1.4rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem;
       border-bottom: 1px solid #ddd; padding-bottom: .2rem; } h3 { font-size: 1rem; margin-bottom: .2rem; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; margin: .5rem 0; }
th, td { text-align: right; padding: .25rem .5rem; border-bottom: 1px solid #eee; vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; height: auto; display: block; margin: .5rem 0; }
.note { color: #666; font-size: .85rem; }
nav { font-size: .9rem; margin-bottom: .5rem; } nav a { margin-right: 1rem; }
"""


def embedded_png(png: bytes | None, alt: str, missing: str = "") -> str:
    """An ``<img>`` carrying its PNG, or a note saying why there is no figure."""
    if png is None:
        return f'<p class="note">No {escape(alt)} figure: {escape(missing or "the data for it is missing")}.</p>'
    data = base64.b64encode(png).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}">'


def page(title: str, body: str, style: str = "") -> str:
    """A whole HTML document with the house style and ``style`` added."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{BASE_STYLE}{style}</style></head>"
        f"<body>{body}</body></html>\n"
    )
