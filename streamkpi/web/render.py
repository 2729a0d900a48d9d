"""HTML of the live page: Jinja2 templates (autoescaped) and server-drawn SVG trends (#16).

No chart library and no build step: a trend is an SVG polyline drawn here, so tiles and
trends show with JavaScript disabled; ``static/live.js`` only refreshes the page's live
part and submits the filters on change.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from importlib import resources
from urllib.parse import urlencode

import jinja2

from streamkpi.kpis.spec import title
from streamkpi.web.model import TABLE_KPIS, Page, Tile

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "STATIC_FILES",
    "render_error",
    "render_page",
    "sparkline",
]

# Nothing but this server: no inline script or style, no external request, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
STATIC_FILES = {
    "live.css": "text/css",
    "live.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("streamkpi.web", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def sparkline(
    points: Sequence[tuple[float, float | None]], width: int = 160, height: int = 36
) -> str:
    """Return the SVG ``points`` attribute(s) of a trend: one polyline per unbroken run.

    Missing values (None) break the line instead of being drawn as 0. The y range is the
    data's own (a flat series is drawn mid-height); the x range is the samples' times.
    """
    known = [(t, v) for t, v in points if v is not None and not math.isnan(v)]
    if len(known) < 2:
        return ""
    t0, t1 = points[0][0], points[-1][0]
    low = min(v for _, v in known)
    high = max(v for _, v in known)
    span_t = (t1 - t0) or 1.0
    pad = 2.0

    def y(v: float) -> float:
        if high == low:
            return height / 2
        return pad + (high - v) / (high - low) * (height - 2 * pad)

    runs: list[list[str]] = [[]]
    for t, v in points:
        if v is None or math.isnan(v):
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(f"{(t - t0) / span_t * width:.1f},{y(v):.1f}")
    return "|".join(" ".join(run) for run in runs if len(run) > 1)


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _number(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


_ENV.filters["sparkline"] = sparkline
_ENV.filters["ago"] = _ago
_ENV.filters["number"] = _number
_ENV.globals["urlencode"] = urlencode
_ENV.globals["TABLE_KPIS"] = TABLE_KPIS
_ENV.globals["title"] = title


def render_page(page: Page, *, refresh_s: float, fragment: bool = False) -> str:
    """Return the page's HTML; ``fragment`` returns only its live part (for live.js)."""
    template = _ENV.get_template("live.html.j2")
    tiles: list[Tile] = [t for _, tiles in page.groups for t in tiles]
    return template.render(
        page=page,
        tiles=tiles,
        refresh_s=refresh_s,
        fragment=fragment,
        generated=time.strftime("%H:%M:%S", time.localtime(page.generated_s)),
    )


def render_error(message: str) -> str:
    """Return the HTML of a refused query (HTTP 400)."""
    return _ENV.get_template("error.html.j2").render(message=message)


def static_file(name: str) -> bytes:
    """Return one of STATIC_FILES."""
    if name not in STATIC_FILES:
        raise KeyError(name)
    return resources.files("streamkpi.web").joinpath("static", name).read_bytes()
