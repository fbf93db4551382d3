"""Charts for the operator pages: Altair (Vega-Lite) specs rendered to SVG on the server.

Rendering on the server with vl-convert (no browser, no Node, no script on the page) keeps the
pages fast on a phone, printable, and free of a vendored JavaScript charting stack; the same spec
can later go into e-mails and PDFs unchanged. Every chart is sized to the container width
(``width="container"`` is not available to a static renderer, so charts use a modest fixed width
and the SVG scales down through CSS: ``svg { max-width: 100%; height: auto }``).
"""

from __future__ import annotations

import re
from typing import Any

import altair as alt
import polars as pl
from markupsafe import Markup

WIDTH = 560
HEIGHT = 240
_XML_DECLARATION = re.compile(r"^<\?xml[^>]*>\s*")


def to_svg(chart: alt.TopLevelMixin, *, title: str) -> Markup:
    """Inline SVG with an accessible name; a chart that fails to render becomes a short notice
    rather than a broken page."""
    import vl_convert as vlc

    spec: dict[str, Any] = chart.to_dict()
    try:
        svg = vlc.vegalite_to_svg(spec)
    except Exception as exc:  # pragma: no cover - renderer failures are reported, not raised
        return Markup('<p class="muted">Chart unavailable: {}</p>').format(str(exc)[:200])
    svg = _XML_DECLARATION.sub("", svg)
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{Markup.escape(title)}" ', 1)
    return Markup(svg)


def line(frame: pl.DataFrame, x: str, y: str, *, title: str, color: str | None = None,
         y_format: str = ",.0f", x_type: str = "temporal") -> Markup:
    encoding: dict[str, Any] = {
        "x": alt.X(f"{x}:{x_type[0].upper()}", title=None),
        "y": alt.Y(f"{y}:Q", title=None, axis=alt.Axis(format=y_format)),
        "tooltip": [x, y] + ([color] if color else []),
    }
    if color:
        encoding["color"] = alt.Color(f"{color}:N", title=None, legend=alt.Legend(orient="bottom"))
    chart = alt.Chart(frame.to_arrow()).mark_line(point=True).encode(**encoding).properties(
        width=WIDTH, height=HEIGHT, title=title)
    return to_svg(chart, title=title)


def bars(frame: pl.DataFrame, x: str, y: str, *, title: str, horizontal: bool = False,
         y_format: str = ",.0f", sort: str | None = None) -> Markup:
    category = alt.X(f"{x}:N", title=None, sort=sort) if not horizontal else alt.Y(f"{x}:N", title=None, sort=sort)
    value = alt.Y(f"{y}:Q", title=None, axis=alt.Axis(format=y_format)) if not horizontal else alt.X(
        f"{y}:Q", title=None, axis=alt.Axis(format=y_format))
    chart = alt.Chart(frame.to_arrow()).mark_bar().encode(
        **({"x": category, "y": value} if not horizontal else {"y": category, "x": value}),
        tooltip=[x, y]).properties(width=WIDTH, height=HEIGHT, title=title)
    return to_svg(chart, title=title)


def heatmap(frame: pl.DataFrame, x: str, y: str, value: str, *, title: str, value_format: str = ".0%") -> Markup:
    base = alt.Chart(frame.to_arrow()).encode(x=alt.X(f"{x}:O", title=None), y=alt.Y(f"{y}:O", title=None))
    cells = base.mark_rect().encode(color=alt.Color(f"{value}:Q", title=None, scale=alt.Scale(scheme="blues"),
                                                    legend=alt.Legend(format=value_format)),
                                    tooltip=[x, y, alt.Tooltip(f"{value}:Q", format=value_format)])
    chart = cells.properties(width=WIDTH, height=max(HEIGHT, 14 * frame[y].n_unique()), title=title)
    return to_svg(chart, title=title)
