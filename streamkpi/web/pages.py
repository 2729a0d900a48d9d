"""The live page's routes on the worker's web server: ``/ui`` and ``/ui/static/*`` (#16).

Not at ``/``: Faust always mounts its own index there (faust.web.base's production
blueprint, ``{"status": "OK"}``), and two routes on one path would depend on the order
aiohttp registers them.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
from faust.web import Request, Response, View

from streamkpi.alerts.config import AlertConfig, load_alert_config
from streamkpi.config import Settings
from streamkpi.web.model import Alert, PageError, build_page, parse_selection
from streamkpi.web.render import (
    CONTENT_SECURITY_POLICY,
    STATIC_FILES,
    render_error,
    render_page,
    static_file,
)
from streamkpi.web.sources import LocalSource, PrometheusSource, Source, SourceError, fetch_alerts

__all__ = ["REFRESH_S", "SECURITY_HEADERS", "attach_web_view", "page_html"]

log = logging.getLogger(__name__)

REFRESH_S = 5.0  # how often the page re-fetches its live part
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


async def page_html(
    settings: Settings,
    source: Source,
    alert_config: AlertConfig,
    query: list[tuple[str, str]],
    *,
    fragment: bool,
) -> tuple[int, str]:
    """Return (HTTP status, HTML) of the live page for a query string."""
    now = time.time()
    try:
        selection = parse_selection(query, settings.windows)
    except PageError as exc:
        return 400, render_error(str(exc))
    try:
        view = await source.view(selection, now)
    except SourceError as exc:
        return 503, render_error(f"{exc}; the page shows no numbers rather than stale ones.")
    alerts: list[Alert] = []
    url = settings.web_view.alertmanager_url
    if url is None:
        alerts_note = (
            "Alerts are not shown: give the worker --alertmanager-url (or "
            "STREAMKPI_WEB_VIEW__ALERTMANAGER_URL). Tiles are coloured by the thresholds."
        )
    else:
        try:
            alerts = await fetch_alerts(url)
            alerts_note = "No alert is firing."
        except SourceError as exc:
            alerts_note = f"{exc}: firing alerts unknown."
    page = build_page(
        view.document,
        selection,
        windows=settings.windows,
        campaigns=view.campaigns,
        channels=view.channels,
        alert_config=alert_config,
        previous=view.previous,
        trend=view.trend,
        alerts=alerts,
        alerts_note=alerts_note,
        health=view.health,
        scope=view.scope,
        currency=settings.reporting_currency,
        generated_s=now,
        trend_note=view.trend_note,
    )
    return 200, render_page(page, refresh_s=REFRESH_S, fragment=fragment)


def attach_web_view(app: faust.App, settings: Settings, local: LocalSource) -> None:
    """Serve the live page at ``/ui`` and sample its trends every ``web_view.sample_s``."""
    config = settings.web_view
    alert_config = load_alert_config(config.alerts_file)
    source: Source = local
    if config.prometheus_url is not None:
        source = PrometheusSource(
            config.prometheus_url,
            job=alert_config.pipeline.job,
            step_s=config.sample_s,
            history_s=config.history_s,
        )

    @app.timer(interval=config.sample_s, name="streamkpi.web_view.sample")  # type: ignore[untyped-decorator]
    async def sample() -> None:
        if config.prometheus_url is None:
            local.sample(time.time())

    @app.page("/ui")
    class Live(View):
        """The live page: tiles, trends, alerts and health of one selection."""

        async def get(self, request: Request) -> Response:
            """Render ``?window=&campaign=&channel=``; only the live part for live.js."""
            status, body = await page_html(
                settings,
                source,
                alert_config,
                list(request.query.items()),
                fragment=request.headers.get("X-Streamkpi-Fragment") == "1",
            )
            return _html(self, body, status)

    @app.page("/ui/static/{name}")
    class Static(View):
        """The page's stylesheet and script (packaged files, no directory listing)."""

        async def get(self, request: Request, name: str) -> Response:
            """Return one of the packaged files, or 404."""
            if name not in STATIC_FILES:
                return _html(self, render_error(f"no static file {name!r}"), 404)
            headers = {**SECURITY_HEADERS, "Content-Type": STATIC_FILES[name]}
            headers["Cache-Control"] = "max-age=300"
            return self.bytes(static_file(name), headers=headers)


def _html(view: Any, body: str, status: int) -> Response:
    # content_type= with a charset is refused by aiohttp under Faust (see
    # ../shared/notes/faust.md); the header does the same.
    headers = {**SECURITY_HEADERS, "Content-Type": "text/html; charset=utf-8"}
    response: Response = view.bytes(body.encode(), status=status, headers=headers)
    return response
