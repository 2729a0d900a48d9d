"""Stable Grafana identifiers shared by the dashboards and the alerts that link to them.

Alerts carry a ``dashboard_url`` annotation that opens the KPI's panel, so the dashboard
uids and panel ids are a contract: change them here, never in one of the generators.
"""

from __future__ import annotations

from enum import Enum, StrEnum
from urllib.parse import urlencode

from streamkpi.kpis.spec import KPIS

__all__ = [
    "DATASOURCE_UID",
    "DEFAULT_GRAFANA_URL",
    "FOLDER",
    "PANEL_ORDER",
    "Dashboard",
    "PipelinePanel",
    "dashboard_url",
    "kpi_panel_id",
]

DATASOURCE_UID = "streamkpi-prometheus"
FOLDER = "StreamKPI"
DEFAULT_GRAFANA_URL = "http://localhost:3000"


class Dashboard(StrEnum):
    """Dashboard uids (also the ``/d/<uid>`` part of their URLs)."""

    overview = "streamkpi-overview"
    campaigns = "streamkpi-campaigns"
    email = "streamkpi-email"
    ecommerce = "streamkpi-ecommerce"
    pipeline = "streamkpi-pipeline"


class PipelinePanel(int, Enum):
    """Panel ids of the pipeline-health dashboard that alerts link to."""

    events = 1  # events/s by topic and outcome
    dead_letters = 2  # DLQ rate by reason
    event_lag = 3  # event-time lag
    consumer_lag = 4
    watermark_delay = 5
    label_overflows = 6
    workers = 7  # workers up


# The order that numbers the KPI panels: the spec's KPIs as they were when the ids were
# first handed out, new ones appended (the spec may list a new KPI next to its relatives:
# key_event_rate after conversion_rate), so bookmarked panels and alert links stay put.
PANEL_ORDER: tuple[str, ...] = (
    "traffic",
    "sessions",
    "new_visitors",
    "leads",
    "conversion_rate",
    "bounce_rate",
    "landing_bounce_rate",
    "repeat_customer_rate",
    "churn_rate",
    "nps",
    "open_rate",
    "machine_open_rate",
    "click_rate",
    "click_to_open_rate",
    "deliverability",
    "average_order_value",
    "cart_abandonment_rate",
    "cpa",
    "roas",
    "roi",
    "key_event_rate",  # issue #11
)
_missing = [k.name for k in KPIS if k.name not in PANEL_ORDER]
if _missing:
    raise RuntimeError(f"KPIs without a panel id (append them to PANEL_ORDER): {_missing}")
_KPI_INDEX = {name: i for i, name in enumerate(PANEL_ORDER)}


def kpi_panel_id(kpi: str) -> int:
    """Return the id of the KPI's time-series panel.

    The same id on the overview dashboard and on the campaigns dashboard: 100 + the KPI's
    position in :data:`PANEL_ORDER` (new KPIs are appended there, so ids stay put).
    """
    return 100 + _KPI_INDEX[kpi]


def dashboard_url(
    dashboard: Dashboard,
    panel_id: int | None = None,
    variables: dict[str, str] | None = None,
    base: str = DEFAULT_GRAFANA_URL,
) -> str:
    """Return the URL of a dashboard, optionally of one panel and with variables set.

    Variable values are passed through unescaped so Prometheus templates such as
    ``{{ $labels.campaign }}`` survive into alert annotations.
    """
    query: list[tuple[str, str]] = []
    if panel_id is not None:
        query.append(("viewPanel", str(panel_id)))
    url = f"{base.rstrip('/')}/d/{dashboard.value}"
    params = urlencode(query)
    extra = "&".join(f"var-{k}={v}" for k, v in (variables or {}).items())
    tail = "&".join(p for p in (params, extra) if p)
    return f"{url}?{tail}" if tail else url
