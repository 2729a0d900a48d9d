"""Where the live page's numbers come from: this worker, or Prometheus for the cluster (#16).

Both give the same shape: a ``/kpis`` report of the selection's window, the KPIs of the
window before, a trend, and the pipeline health. The worker's source reads its engines
(its partitions only); the Prometheus source sums every worker's component gauges with
PromQL, then divides with the same code (``kpis.values``), so the page's numbers and the
recording rules are the same arithmetic: sum the components, then divide.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import aiohttp
from prometheus_client import CollectorRegistry

from streamkpi.config import parse_duration_s
from streamkpi.kpis.spec import COMPONENTS, Labels
from streamkpi.kpis.values import Row, kpi_values, report
from streamkpi.web.history import KpiHistory
from streamkpi.web.model import Alert, Health, Selection

__all__ = [
    "HTTP_TIMEOUT_S",
    "LocalSource",
    "PrometheusSource",
    "SourceError",
    "View",
    "fetch_alerts",
]

HTTP_TIMEOUT_S = 3.0
_CC_COMPONENTS = tuple(c.metric for c in COMPONENTS if c.labels is Labels.campaign_channel)
_SELECTOR_NAMES = "|".join(_CC_COMPONENTS)


class SourceError(RuntimeError):
    """The source did not answer: the page says so instead of showing stale numbers."""


@dataclass(frozen=True, slots=True)
class View:
    """The numbers of one selection."""

    document: dict[str, Any]  # kpis.values.report() of the selection
    campaigns: tuple[str, ...]  # every campaign of the window (for the filter)
    channels: tuple[str, ...]
    previous: Mapping[str, float | None] | None
    trend: list[tuple[float, dict[str, float | None]]]
    trend_note: str
    health: Health
    scope: str


class Source(Protocol):
    """What the page reads its numbers from."""

    async def view(self, selection: Selection, now_s: float) -> View:
        """Return the numbers of ``selection`` as of ``now_s``."""
        ...


def _labels(document: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    cells = document["campaigns"]
    return (
        tuple(sorted({c["campaign"] for c in cells})),
        tuple(sorted({c["channel"] for c in cells})),
    )


class LocalSource:
    """This worker's partitions: engine rows now, a sampled history for the trends."""

    def __init__(
        self,
        rows: Callable[[float], Iterable[Row]],
        registry: CollectorRegistry,
        history: KpiHistory,
        partitions: Callable[[], Iterable[int]],
        topic_partitions: int,
    ) -> None:
        """Read ``rows(now)`` and ``registry``'s health series; sample into ``history``."""
        self._rows = rows
        self._registry = registry
        self.history = history
        self._partitions = partitions
        self._topic_partitions = topic_partitions
        # (t, records consumed so far, dead letters so far), the last hour's samples
        self._counts: list[tuple[float, float, float]] = []

    def _totals(self) -> dict[str, list[float]]:
        wanted = {
            "streamkpi_events_total",
            "streamkpi_dead_letters_total",
            "streamkpi_consumer_lag",
            "streamkpi_watermark_delay_seconds",
        }
        out: dict[str, list[float]] = {}
        for metric in self._registry.collect():
            for s in metric.samples:
                if s.name in wanted:
                    out.setdefault(s.name, []).append(s.value)
        return out

    def sample(self, now_s: float) -> None:
        """Take one trend sample (the worker's web-view timer calls this)."""
        self.history.sample(now_s, self._rows(now_s))
        totals = self._totals()
        self._counts.append(
            (
                now_s,
                sum(totals.get("streamkpi_events_total", [0])),
                sum(totals.get("streamkpi_dead_letters_total", [0])),
            )
        )
        while self._counts and self._counts[0][0] < now_s - 3600:
            self._counts.pop(0)

    def _health(self, now_s: float) -> Health:
        totals = self._totals()
        consumed = sum(totals.get("streamkpi_events_total", [0]))
        dead = sum(totals.get("streamkpi_dead_letters_total", [0]))
        rate = None
        # Events/s over the last few samples; dead letters over the last hour (or since
        # the worker started, if that is less).
        recent = [c for c in self._counts if c[0] >= now_s - 3 * self.history.sample_s - 1]
        if recent and now_s - recent[0][0] >= 1:
            rate = (consumed - recent[0][1]) / (now_s - recent[0][0])
        delays = totals.get("streamkpi_watermark_delay_seconds", [])
        return Health(
            events_per_s=rate,
            consumer_lag=sum(totals.get("streamkpi_consumer_lag", [0])),
            watermark_delay_s=max(delays) if delays else None,
            dead_letters=(
                dead - self._counts[0][2]
                if self._counts and now_s - self._counts[0][0] >= 3600 - self.history.sample_s
                else dead
            ),
        )

    async def view(self, selection: Selection, now_s: float) -> View:
        """Return the selection's numbers from this worker's engines."""
        rows = list(self._rows(now_s))
        everything = report(rows, selection.window)
        document = report(
            rows, selection.window, campaign=selection.campaign, channel=selection.channel
        )
        campaigns, channels = _labels(everything)
        window_s = parse_duration_s(selection.window)
        trend_note = ""
        if not self.history.kept(selection) and self.history.series:
            trend_note = (
                f"No trend is kept for this selection: the page keeps at most "
                f"{self.history.max_series} per window (web_view.max_series)."
            )
        owned = sorted(self._partitions())
        scope = (
            f"This worker's partitions {', '.join(map(str, owned)) or 'none yet'} of "
            f"{self._topic_partitions}: the values count only their events. Give the "
            "worker --prometheus-url to see every worker's."
            if len(owned) < self._topic_partitions
            else f"All {self._topic_partitions} partitions (this worker owns them all)."
        )
        return View(
            document=document,
            campaigns=campaigns,
            channels=channels,
            previous=self.history.at(selection, now_s - window_s),
            trend=self.history.points(selection),
            trend_note=trend_note,
            health=self._health(now_s),
            scope=scope,
        )


def _number(text: str) -> int | Decimal:
    value = float(text)
    if math.isfinite(value) and value.is_integer():
        return int(value)
    return Decimal(text)


def _matchers(window: str, campaign: str | None, channel: str | None) -> str:
    parts = [f'__name__=~"{_SELECTOR_NAMES}"', f'window="{_escape(window)}"']
    if campaign is not None:
        parts.append(f'campaign="{_escape(campaign)}"')
    if channel is not None:
        parts.append(f'channel="{_escape(channel)}"')
    return "{" + ", ".join(parts) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_METRIC = re.compile(r"^streamkpi_")


class PrometheusSource:
    """Every worker: the component gauges summed by Prometheus, divided here."""

    def __init__(self, url: str, *, job: str, step_s: float, history_s: float) -> None:
        """Query the Prometheus HTTP API at ``url``; ``job`` is the workers' scrape job."""
        self.url = url.rstrip("/")
        self._job = job
        self._step_s = step_s
        self._history_s = history_s

    async def _get(self, session: aiohttp.ClientSession, path: str, **params: str) -> Any:
        try:
            async with session.get(f"{self.url}{path}", params=params) as response:
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SourceError(
                f"Prometheus at {self.url} did not answer ({type(exc).__name__})"
            ) from None
        if body.get("status") != "success":
            raise SourceError(f"Prometheus at {self.url}: {body.get('error', body)}")
        return body["data"]

    async def _rows(self, session: aiohttp.ClientSession, selector: str, at_s: float) -> list[Row]:
        data = await self._get(
            session,
            "/api/v1/query",
            query=f"sum by (__name__, window, campaign, channel) ({selector})",
            time=f"{at_s:.3f}",
        )
        rows: list[Row] = []
        for item in data["result"]:
            metric = item["metric"]
            name = _METRIC.sub("", metric.get("__name__", ""))
            labels = (metric.get("campaign", ""), metric.get("channel", ""))
            rows.append((name, metric.get("window", ""), labels, _number(item["value"][1])))
        return rows

    async def _scalar(
        self, session: aiohttp.ClientSession, query: str, at_s: float
    ) -> float | None:
        data = await self._get(session, "/api/v1/query", query=query, time=f"{at_s:.3f}")
        result = data["result"]
        if not result:
            return None
        value = float(result[0]["value"][1])
        return value if math.isfinite(value) else None

    async def view(self, selection: Selection, now_s: float) -> View:
        """Return the selection's numbers over every worker Prometheus scrapes."""
        window_s = parse_duration_s(selection.window)
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            rows = await self._rows(session, _matchers(selection.window, None, None), now_s)
            chosen = _matchers(selection.window, selection.campaign, selection.channel)
            before = await self._rows(session, chosen, now_s - window_s)
            trend = await self._trend(session, chosen, now_s)
            job = _escape(self._job)
            health = Health(
                events_per_s=await self._scalar(
                    session, f'sum(rate(streamkpi_events_total{{job="{job}"}}[1m]))', now_s
                ),
                consumer_lag=await self._scalar(
                    session, f'sum(streamkpi_consumer_lag{{job="{job}"}})', now_s
                ),
                watermark_delay_s=await self._scalar(
                    session, f'max(streamkpi_watermark_delay_seconds{{job="{job}"}})', now_s
                ),
                dead_letters=await self._scalar(
                    session,
                    f'sum(increase(streamkpi_dead_letters_total{{job="{job}"}}[1h]))',
                    now_s,
                ),
                workers=int(
                    await self._scalar(session, f'count(up{{job="{job}"}} == 1)', now_s) or 0
                ),
            )
        everything = report(rows, selection.window)
        document = report(
            rows, selection.window, campaign=selection.campaign, channel=selection.channel
        )
        campaigns, channels = _labels(everything)
        previous = report(before, selection.window)["overall"]
        return View(
            document=document,
            campaigns=campaigns,
            channels=channels,
            previous=previous["kpis"] if previous["components"] else None,
            trend=trend,
            trend_note="",
            health=health,
            scope=f"Every worker (job {self._job}), from Prometheus at {self.url}.",
        )

    async def _trend(
        self, session: aiohttp.ClientSession, selector: str, now_s: float
    ) -> list[tuple[float, dict[str, float | None]]]:
        data = await self._get(
            session,
            "/api/v1/query_range",
            query=f"sum by (__name__) ({selector})",
            start=f"{now_s - self._history_s:.3f}",
            end=f"{now_s:.3f}",
            step=f"{self._step_s:g}",
        )
        by_t: dict[float, dict[str, int | Decimal]] = {}
        for item in data["result"]:
            name = _METRIC.sub("", item["metric"].get("__name__", ""))
            for t, value in item["values"]:
                by_t.setdefault(float(t), {})[name] = _number(value)
        return [(t, kpi_values(c, Labels.campaign_channel)) for t, c in sorted(by_t.items())]


async def fetch_alerts(url: str) -> list[Alert]:
    """Return the active, unsilenced alerts of the Alertmanager at ``url``; SourceError if down."""
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    endpoint = f"{url.rstrip('/')}/api/v2/alerts"
    params = {"active": "true", "silenced": "false", "inhibited": "false"}
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(endpoint, params=params) as response,
        ):
            response.raise_for_status()
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise SourceError(f"Alertmanager at {url} did not answer ({type(exc).__name__})") from None
    alerts = [Alert.from_alertmanager(item) for item in body if isinstance(item, dict)]
    order = {"critical": 0, "warning": 1}
    return sorted(
        alerts, key=lambda a: (order.get(a.severity, 2), a.name, sorted(a.labels.items()))
    )


def now() -> float:
    """Return the wall clock (the engines' windows end at it)."""
    return time.time()
