"""The five Grafana dashboards, built from the KPI spec (a new KPI appears without editing JSON).

* Overview: one row per KPI category, a stat (overall value, sparkline) and a time series
  (overall and by channel / page) per KPI; traffic by channel.
* Campaigns: the selected campaigns and channels: funnel, conversion, CPA, ROAS, ROI, a
  ranking table, and a time series per KPI by campaign and channel.
* E-mail: per e-mail campaign: volumes, open rate with machine opens apart, clicks,
  deliverability, unsubscribes and complaints.
* E-commerce: revenue, basket, carts, repeat customers, churn (the e-commerce and retention
  categories).
* Pipeline health: events by topic and outcome, dead letters, lags, watermarks, label caps,
  workers, checkpoints.

Panel ids that alerts link to come from :mod:`streamkpi.dashboards.ids`. Stat panels are
coloured by the alert thresholds given to :func:`build_dashboards` (none by default).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from streamkpi.dashboards.ids import (
    DATASOURCE_UID,
    FOLDER,
    Dashboard,
    PipelinePanel,
    dashboard_url,
    kpi_panel_id,
)
from streamkpi.dashboards.panels import (
    DATASOURCE,
    Column,
    Grid,
    Json,
    Thresholds,
    bargauge,
    currency_unit,
    custom_variable,
    panel_link,
    query_variable,
    row,
    stat,
    table,
    target,
    timeseries,
)
from streamkpi.dashboards.queries import (
    breakdown_level,
    component_record,
    finest_level,
    formula,
    kpi_record,
    level_labels,
    selection_expr,
    selector,
)
from streamkpi.kpis.email import EMAILS
from streamkpi.kpis.spec import (
    COMPONENTS,
    KPIS,
    Category,
    Component,
    Direction,
    Kpi,
    Unit,
)
from streamkpi.kpis.spec import (
    title as _title,
)

__all__ = [
    "ALERTS_EXPR",
    "DASHBOARD_DIR",
    "GRAFANA_DIR",
    "SCHEMA_VERSION",
    "build_dashboards",
    "dashboard_files",
    "generated_files",
    "provisioning_files",
]

GRAFANA_DIR = Path(__file__).resolve().parents[2] / "grafana"
DASHBOARD_DIR = Path("dashboards")  # relative to GRAFANA_DIR
SCHEMA_VERSION = 39  # Grafana 10.3 to 11.x
TAG = "streamkpi"
ALERTS_EXPR = 'ALERTS{alertstate="firing", alertname=~"StreamKPI.*"}'

# Which KPI categories the topical dashboards show (overview and campaigns show all).
EMAIL_CATEGORIES = (Category.emailing,)
ECOMMERCE_CATEGORIES = (Category.ecommerce, Category.retention)
# Components shown as volumes beside the KPIs (names checked against the spec).
FUNNEL = ("sessions", "carts_created", "purchases")
CAMPAIGN_VOLUMES = ("sessions", "carts_created", "purchases", "revenue", "ad_spend")
EMAIL_VOLUMES = EMAILS.components  # every e-mail component, in the engine's order
ECOMMERCE_VOLUMES = ("revenue", "purchases", "carts_created", "refunded_revenue")
# The category a KPI's stat links to for details.
_DETAIL_DASHBOARD = {
    Category.emailing: Dashboard.email,
    Category.ecommerce: Dashboard.ecommerce,
    Category.retention: Dashboard.ecommerce,
}

_COMPONENTS = {c.name: c for c in COMPONENTS}
_GOOD = {
    Direction.up: "Higher is better.",
    Direction.down: "Lower is better.",
    Direction.neutral: "Neither direction is good or bad in itself.",
}
# Auto-numbered panels start here: clear of the contract ids (1-7, 100 + KPI index) and of
# the KPI stat panels (200 + KPI index).
_FIRST_AUTO_ID = 1000


class _Ids:
    """Hand out panel ids: fixed ones for linked panels, a counter for the rest."""

    def __init__(self) -> None:
        self._next = _FIRST_AUTO_ID

    def auto(self) -> int:
        self._next += 1
        return self._next - 1


def _kpi_stat_id(kpi: Kpi) -> int:
    return kpi_panel_id(kpi.name) + 100


class _Context:
    """What every dashboard builder needs: units, thresholds, the window choice."""

    def __init__(
        self, windows: Sequence[str], currency: str, thresholds: Mapping[str, Thresholds]
    ) -> None:
        self.windows = tuple(windows)
        self.currency = currency
        self.thresholds = thresholds

    def unit(self, unit: Unit) -> str:
        return {
            Unit.number: "short",
            Unit.currency: currency_unit(self.currency),
            Unit.ratio: "percentunit",
            Unit.percent: "percentunit",  # ROI: 0.5 shows as 50%, 1.5 as 150%
            Unit.multiple: "suffix:x",  # ROAS: 2.1 shows as 2.1x
            Unit.score: "none",
        }[unit]

    def bounds(self, kpi: Kpi) -> Thresholds | None:
        return self.thresholds.get(kpi.name)

    def window_variable(self) -> Json:
        return custom_variable("window", "Window", self.windows, self.windows[0])


_PROVISIONAL = (
    "Provisional: counted in the bucket of each e-mail's first delivery, so a window's "
    "value still rises for hours as late opens and clicks of its deliveries arrive; the "
    "latest windows read low."
)


def _kpi_description(kpi: Kpi, query: str, scope: str) -> str:
    provisional = f" {_PROVISIONAL}" if kpi.provisional else ""
    return (
        f"{kpi.help} Formula: `{formula(kpi)}`, each component summed over the trailing "
        f"window ($window) and over all workers, then divided; no value when the denominator "
        f"is 0.{provisional} {_GOOD[kpi.direction]} {scope} Query: `{query}`."
        if kpi.is_ratio
        else f"{kpi.help} Formula: `{formula(kpi)}`, summed over the trailing window ($window) "
        f"and over all workers.{provisional} {_GOOD[kpi.direction]} {scope} Query: `{query}`."
    )


def _component_description(component: Component, query: str, scope: str) -> str:
    return (
        f"{component.help} Summed over the trailing window ($window) and over all workers. "
        f"{scope} Query: `{query}`."
    )


def _kpi_min(kpi: Kpi) -> float | None:
    return None if kpi.unit is Unit.score or kpi.subtract else 0


def _kpi_timeseries(
    ctx: _Context,
    kpi: Kpi,
    title: str,
    description: str,
    targets: Sequence[Json],
    *,
    panel_id: int,
    links: Sequence[Json] = (),
) -> Json:
    """Return a KPI's time-series panel: its unit, alert thresholds and floor."""
    return timeseries(
        title,
        description,
        targets,
        panel_id=panel_id,
        unit=ctx.unit(kpi.unit),
        bounds=ctx.bounds(kpi),
        min_value=_kpi_min(kpi),
        links=links,
    )


def _alerts_annotation() -> Json:
    return {
        "datasource": DATASOURCE,
        "enable": True,
        "expr": ALERTS_EXPR,
        "hide": False,
        "iconColor": "red",
        "name": "Firing StreamKPI alerts",
        "step": "1m",
        "tagKeys": "severity",
        "textFormat": "{{alertname}} ({{severity}})",
        "titleFormat": "{{alertname}}",
        "useValueForTime": False,
    }


def _dashboard(
    uid: Dashboard, title: str, description: str, grid: Grid, variables: Sequence[Json]
) -> Json:
    return {
        "annotations": {"list": [_alerts_annotation()]},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,  # shared crosshair
        "id": None,
        "links": [
            {
                "asDropdown": True,
                "includeVars": True,  # campaign, channel and window carry over
                "keepTime": True,
                "tags": [TAG],
                "targetBlank": False,
                "title": "StreamKPI dashboards",
                "type": "dashboards",
            }
        ],
        "panels": grid.panels,
        # Exported windows move with 1-minute buckets; refreshing faster shows nothing new.
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": [TAG],
        "templating": {"list": list(variables)},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid.value,
        "version": 1,
        "weekStart": "",
    }


def _link_to(dashboard: Dashboard, title: str, panel_id: int | None = None) -> Json:
    url = dashboard_url(dashboard, panel_id, {"window": "${window}"}, base="")
    return panel_link(title, f"{url}&${{__url_time_range}}")


# --------------------------------------------------------------------------------------
# Overview


def _overview(ctx: _Context, ids: _Ids) -> Json:
    grid = Grid()
    for category in Category:
        kpis = [k for k in KPIS if k.category is category]
        if not kpis:
            continue
        grid.row(row(category.value.capitalize(), panel_id=ids.auto()))
        for k in kpis:
            query = kpi_record(k, "overall")
            detail = _DETAIL_DASHBOARD.get(category, Dashboard.campaigns)
            grid.add(
                stat(
                    _title(k.name),
                    _kpi_description(k, query, "All campaigns and channels."),
                    [target(query, k.name)],
                    panel_id=_kpi_stat_id(k),
                    unit=ctx.unit(k.unit),
                    bounds=ctx.bounds(k),
                    links=[_link_to(detail, "Details")],
                ),
                w=4,
                h=4,
            )
        for k in kpis:
            level = breakdown_level(k.labels)
            (label,) = level_labels(k.labels, level)
            overall, split = kpi_record(k, "overall"), kpi_record(k, level)
            grid.add(
                _kpi_timeseries(
                    ctx,
                    k,
                    f"{_title(k.name)} by {label}",
                    _kpi_description(k, f"{overall}; {split}", f"Overall and by {label}."),
                    [target(overall, "all"), target(split, f"{{{{{label}}}}}")],
                    panel_id=kpi_panel_id(k.name),
                    links=[_link_to(Dashboard.campaigns, "By campaign", kpi_panel_id(k.name))],
                ),
                w=8,
                h=8,
            )
        if category is Category.acquisition:
            traffic = next(k for k in kpis if k.name == "traffic")
            query = f"sort_desc({kpi_record(traffic, 'channel')})"
            grid.add(
                bargauge(
                    "Traffic by channel",
                    _kpi_description(traffic, query, "Split by channel, largest first."),
                    [target(query, "{{channel}}")],
                    panel_id=ids.auto(),
                    unit=ctx.unit(traffic.unit),
                ),
                w=8,
                h=8,
            )
    return _dashboard(
        Dashboard.overview,
        "StreamKPI / Overview",
        "Every KPI of the spec, overall and by channel, one row per category.",
        grid,
        [ctx.window_variable()],
    )


# --------------------------------------------------------------------------------------
# Campaigns


_CAMPAIGN_FILTERS = {"campaign": "$campaign", "channel": "$channel"}
_SELECTION = "The selected campaigns and channels (sums first, then divided)."


def _campaign_variables(ctx: _Context) -> list[Json]:
    # Any campaign-level record of the longest window lists every campaign that has data
    # (web, e-mail, orders or spend only), whichever window the panels show.
    longest = ctx.windows[-1]
    every_record = f'{{__name__=~"campaign_channel:streamkpi_.+:(sum|ratio){longest}"'
    return [
        ctx.window_variable(),
        query_variable(
            "campaign",
            "Campaign",
            f"label_values({every_record}}}, campaign)",
            "Campaigns with data in the longest window.",
        ),
        query_variable(
            "channel",
            "Channel",
            f'label_values({every_record}, campaign=~"$campaign"}}, channel)',
            "Channels of the selected campaigns.",
        ),
    ]


def _volume_stat(ctx: _Context, ids: _Ids, name: str, filters: Mapping[str, str]) -> Json:
    component = _COMPONENTS[name]
    query = f"sum({selector(component_record(component, 'campaign_channel'), filters)})"
    return stat(
        _title(name),
        _component_description(component, query, _SELECTION),
        [target(query, name)],
        panel_id=ids.auto(),
        unit=ctx.unit(component.unit),
    )


def _selection_stat(ctx: _Context, ids: _Ids, kpi: Kpi, filters: Mapping[str, str]) -> Json:
    query = selection_expr(kpi, _COMPONENTS, filters)
    return stat(
        _title(kpi.name),
        _kpi_description(kpi, query, _SELECTION),
        [target(query, kpi.name)],
        panel_id=ids.auto(),
        unit=ctx.unit(kpi.unit),
        bounds=ctx.bounds(kpi),
    )


def _kpi_rows(
    ctx: _Context,
    grid: Grid,
    ids: _Ids,
    categories: Iterable[Category],
    panel_id: Mapping[str, int] | None,
) -> None:
    """Add a row per category with a time series per KPI, by campaign and channel."""
    for category in categories:
        kpis = [k for k in KPIS if k.category is category]
        if not kpis:
            continue
        grid.row(row(f"{category.value.capitalize()} by campaign", panel_id=ids.auto()))
        for k in kpis:
            level = finest_level(k.labels)
            labels = level_labels(k.labels, level)
            filters = {label: f"${label}" for label in labels if label in _CAMPAIGN_FILTERS}
            query = selector(kpi_record(k, level), filters)
            legend = " · ".join(f"{{{{{label}}}}}" for label in labels)
            scope = (
                "By campaign and channel (the selected ones)."
                if filters
                else f"By {', '.join(labels)}: this KPI has no campaign breakdown."
            )
            grid.add(
                _kpi_timeseries(
                    ctx,
                    k,
                    _title(k.name),
                    _kpi_description(k, query, scope),
                    [target(query, legend)],
                    panel_id=panel_id[k.name] if panel_id else ids.auto(),
                ),
                w=8,
                h=8,
            )


def _campaigns(ctx: _Context, ids: _Ids) -> Json:
    grid = Grid()
    filters = _CAMPAIGN_FILTERS
    headline = [k for k in KPIS if k.name == "conversion_rate" or k.category is Category.paid]
    grid.row(row("Selected campaigns and channels", panel_id=ids.auto()))
    grid.add_all([_volume_stat(ctx, ids, name, filters) for name in CAMPAIGN_VOLUMES], w=4, h=4)
    grid.add_all([_selection_stat(ctx, ids, k, filters) for k in headline], w=6, h=4)

    grid.row(row("Funnel and ranking", panel_id=ids.auto()))
    funnel = [_COMPONENTS[name] for name in FUNNEL]
    funnel_queries = [
        f"sum({selector(component_record(c, 'campaign_channel'), filters)})" for c in funnel
    ]
    grid.add(
        bargauge(
            "Funnel: " + " → ".join(c.name.replace("_", " ") for c in funnel),
            "The selection's funnel: "
            + "; ".join(f"{c.name}: {c.help}" for c in funnel)
            + " Each summed over the trailing window ($window) and all workers. Queries: "
            + "; ".join(f"`{q}`" for q in funnel_queries)
            + ".",
            [
                target(q, f"{i}. {c.name.replace('_', ' ')}")
                for i, (q, c) in enumerate(zip(funnel_queries, funnel, strict=True), 1)
            ],
            panel_id=ids.auto(),
            unit="short",
        ),
        w=8,
        h=8,
    )
    by_campaign = [
        Column(
            f"sum by (campaign) ({selector(component_record(c, 'campaign_channel'), filters)})",
            _title(c.name),
            ctx.unit(c.unit),
            gauge=True,
        )
        for c in funnel
    ]
    conversion = next(k for k in headline if k.name == "conversion_rate")
    by_campaign.append(
        Column(
            selection_expr(conversion, _COMPONENTS, filters, by=("campaign",)),
            "Conversion rate",
            ctx.unit(conversion.unit),
        )
    )
    grid.add(
        table(
            "Funnel by campaign",
            "Per campaign, over the selected channels: "
            + ", ".join(c.name for c in funnel)
            + f" (sums over the trailing window $window), and conversion rate "
            f"({conversion.help} `{formula(conversion)}`, summed before dividing).",
            ["campaign"],
            by_campaign,
            panel_id=ids.auto(),
            sort_by=by_campaign[0].header,
        ),
        w=16,
        h=8,
    )
    ranking = [
        Column(
            selector(component_record(_COMPONENTS[name], "campaign_channel"), filters),
            _title(name),
            ctx.unit(_COMPONENTS[name].unit),
        )
        for name in ("sessions", "revenue", "ad_spend")
    ] + [
        Column(
            selector(kpi_record(k, "campaign_channel"), filters),
            _title(k.name),
            ctx.unit(k.unit),
        )
        for k in headline
    ]
    grid.add(
        table(
            "Campaigns ranked by revenue",
            "One row per campaign and channel, ranked by revenue (click a header to rank by "
            "another column). "
            + " ".join(f"{k.name}: {k.help} `{formula(k)}`." for k in headline)
            + " Sums over the trailing window ($window); ratios from the recording rules.",
            ["campaign", "channel"],
            ranking,
            panel_id=ids.auto(),
            sort_by="Revenue",
        ),
        w=24,
        h=10,
    )
    _kpi_rows(ctx, grid, ids, Category, {k.name: kpi_panel_id(k.name) for k in KPIS})
    return _dashboard(
        Dashboard.campaigns,
        "StreamKPI / Campaigns",
        "Campaign performance: funnel, conversion, CPA, ROAS, ROI and every KPI by campaign "
        "and channel. Variables: campaign, channel, window.",
        grid,
        _campaign_variables(ctx),
    )


# --------------------------------------------------------------------------------------
# E-mail


def _email(ctx: _Context, ids: _Ids) -> Json:
    grid = Grid()
    filters = {"campaign": "$campaign"}
    kpis = [k for k in KPIS if k.category in EMAIL_CATEGORIES]
    grid.row(row("Selected e-mail campaigns", panel_id=ids.auto()))
    grid.add_all([_volume_stat(ctx, ids, name, filters) for name in EMAIL_VOLUMES], w=3, h=4)
    grid.add_all([_selection_stat(ctx, ids, k, filters) for k in kpis], w=24 // len(kpis), h=4)

    grid.row(row("By e-mail campaign", panel_id=ids.auto()))
    columns = [
        Column(
            f"sum by (campaign) ({selector(component_record(_COMPONENTS[n], 'campaign_channel'), filters)})",  # noqa: E501
            _title(n),
            "short",
        )
        for n in EMAIL_VOLUMES
    ] + [
        Column(
            selection_expr(k, _COMPONENTS, filters, by=("campaign",)),
            _title(k.name),
            ctx.unit(k.unit),
        )
        for k in kpis
    ]
    grid.add(
        table(
            "E-mail campaigns",
            "One row per e-mail campaign: volumes (sums over the trailing window $window) and "
            "rates. " + " ".join(f"{k.name}: {k.help} `{formula(k)}`." for k in kpis),
            ["campaign"],
            columns,
            panel_id=ids.auto(),
            sort_by=columns[0].header,
        ),
        w=24,
        h=8,
    )
    grid.row(row("Over time, by e-mail campaign", panel_id=ids.auto()))
    for k in kpis:
        query = selection_expr(k, _COMPONENTS, filters, by=("campaign",))
        grid.add(
            _kpi_timeseries(
                ctx,
                k,
                _title(k.name),
                _kpi_description(k, query, "By e-mail campaign."),
                [target(query, "{{campaign}}")],
                panel_id=ids.auto(),
            ),
            w=8,
            h=8,
        )
    for title, names in (
        ("Sent, delivered, bounced", ("emails_sent", "emails_delivered", "emails_bounced")),
        ("Unsubscribes and complaints", ("email_unsubscribes", "email_complaints")),
    ):
        comps = [_COMPONENTS[n] for n in names]
        queries = [
            f"sum by (campaign) ({selector(component_record(c, 'campaign_channel'), filters)})"
            for c in comps
        ]
        grid.add(
            timeseries(
                title,
                " ".join(f"{c.name}: {c.help}" for c in comps)
                + " Sums over the trailing window ($window), by e-mail campaign. Queries: "
                + "; ".join(f"`{q}`" for q in queries)
                + ".",
                [
                    target(q, f"{{{{campaign}}}} {c.name.replace('_', ' ')}")
                    for q, c in zip(queries, comps, strict=True)
                ],
                panel_id=ids.auto(),
                unit="short",
                min_value=0,
            ),
            w=8,
            h=8,
        )
    return _dashboard(
        Dashboard.email,
        "StreamKPI / E-mail",
        "E-mail campaigns: sent, delivered, human and machine (privacy-proxy) opens apart, "
        "clicks, deliverability, unsubscribes and complaints. Variables: campaign, window.",
        grid,
        [
            ctx.window_variable(),
            query_variable(
                "campaign",
                "E-mail campaign",
                f"label_values(campaign_channel:streamkpi_emails_sent:sum{ctx.windows[-1]}, "
                "campaign)",
                "Campaigns that sent e-mails in the longest window.",
            ),
        ],
    )


# --------------------------------------------------------------------------------------
# E-commerce


def _ecommerce(ctx: _Context, ids: _Ids) -> Json:
    grid = Grid()
    filters = _CAMPAIGN_FILTERS
    kpis = [k for k in KPIS if k.category in ECOMMERCE_CATEGORIES]
    grid.row(row("Selected campaigns and channels", panel_id=ids.auto()))
    grid.add_all([_volume_stat(ctx, ids, name, filters) for name in ECOMMERCE_VOLUMES], w=6, h=4)
    grid.add_all([_selection_stat(ctx, ids, k, filters) for k in kpis], w=24 // len(kpis), h=4)

    grid.row(row("Volumes by channel", panel_id=ids.auto()))
    for title, names in (
        ("Revenue and refunds", ("revenue", "refunded_revenue")),
        # Bought + abandoned is cart abandonment's denominator (carts decided).
        (
            "Carts created, bought, abandoned",
            ("carts_created", "carts_purchased", "carts_abandoned"),
        ),
        ("Customers: active, activated, churned", _CUSTOMERS),
    ):
        comps = [_COMPONENTS[n] for n in names]
        queries = [
            f"sum by (channel) ({selector(component_record(c, 'campaign_channel'), filters)})"
            for c in comps
        ]
        grid.add(
            timeseries(
                title,
                " ".join(f"{c.name}: {c.help}" for c in comps)
                + " Over the trailing window ($window), the selected campaigns, by channel. "
                "Queries: " + "; ".join(f"`{q}`" for q in queries) + ".",
                [
                    target(q, f"{{{{channel}}}} {c.name.replace('_', ' ')}")
                    for q, c in zip(queries, comps, strict=True)
                ],
                panel_id=ids.auto(),
                unit=ctx.unit(comps[0].unit),
                min_value=0,
            ),
            w=8,
            h=8,
        )
    for category in ECOMMERCE_CATEGORIES:
        category_kpis = [k for k in kpis if k.category is category]
        if not category_kpis:
            continue
        grid.row(row(f"{category.value.capitalize()} by channel", panel_id=ids.auto()))
        for k in category_kpis:
            by = tuple(label for label in ("channel",) if label in _label_names(k))
            query = selection_expr(k, _COMPONENTS, filters, by=by)
            grid.add(
                _kpi_timeseries(
                    ctx,
                    k,
                    _title(k.name),
                    _kpi_description(k, query, "The selected campaigns, by channel."),
                    [target(query, "{{channel}}")],
                    panel_id=ids.auto(),
                ),
                w=8,
                h=8,
            )
    return _dashboard(
        Dashboard.ecommerce,
        "StreamKPI / E-commerce",
        "Shop KPIs: revenue, average order value, cart abandonment, repeat customers, churn. "
        "Variables: campaign, channel, window.",
        grid,
        _campaign_variables(ctx),
    )


_CUSTOMERS = ("active_customers", "customer_activations", "churned_customers")


def _label_names(kpi: Kpi) -> tuple[str, ...]:
    return level_labels(kpi.labels, finest_level(kpi.labels))


# --------------------------------------------------------------------------------------
# Pipeline health

_RATE = "$__rate_interval"


def _pipeline(ctx: _Context, ids: _Ids) -> Json:
    grid = Grid()
    events = f"rate(streamkpi_events_total[{_RATE}])"
    grid.row(row("Now", panel_id=ids.auto()))
    summary = [
        ("Workers", "count(streamkpi_owned_partitions)", "none", "Workers being scraped."),
        (
            "Events/s",
            f"sum({events})",
            "eps",
            "Records consumed per second, every topic and outcome.",
        ),
        (
            "Invalid share",
            f'sum(rate(streamkpi_events_total{{outcome="invalid"}}[{_RATE}])) '
            f"/ (sum({events}) > 0)",
            "percentunit",
            "Invalid records / all records consumed.",
        ),
        (
            "Dead letters/s",
            f"sum(rate(streamkpi_dead_letters_total[{_RATE}]))",
            "eps",
            "Records written to the dead-letter topic per second.",
        ),
        (
            "Max consumer lag",
            "max(streamkpi_consumer_lag)",
            "short",
            "Records not yet processed on the most behind input partition.",
        ),
        (
            "Max watermark delay",
            "max(streamkpi_watermark_delay_seconds)",
            "s",
            "Wall clock minus the watermark on the most behind input partition.",
        ),
    ]
    for title, query, unit, help_text in summary:
        grid.add(
            stat(
                title,
                f"{help_text} Query: `{query}`.",
                [target(query, title)],
                panel_id=ids.auto(),
                unit=unit,
            ),
            w=4,
            h=4,
        )

    grid.row(row("Throughput", panel_id=ids.auto()))
    events_by = f"sum by (topic, outcome) ({events})"
    grid.add(
        timeseries(
            "Events/s by topic and outcome",
            "Records consumed per second by logical topic and outcome (accepted, invalid, "
            "duplicate, late), all workers. `streamkpi_events_total`: every series exists "
            f"from start at 0. Query: `{events_by}`.",
            [target(events_by, "{{topic}} {{outcome}}")],
            panel_id=PipelinePanel.events.value,
            unit="eps",
            min_value=0,
        ),
        w=12,
        h=8,
    )
    dlq = f"sum by (topic, reason) (rate(streamkpi_dead_letters_total[{_RATE}]))"
    grid.add(
        timeseries(
            "Dead letters/s by reason",
            "Records written to the dead-letter topic per second, by source topic and reason "
            "(invalid_json, missing_field, bad_ts, unknown_currency, late, ...). "
            f"Query: `{dlq}`.",
            [target(dlq, "{{topic}}: {{reason}}")],
            panel_id=PipelinePanel.dead_letters.value,
            unit="eps",
            min_value=0,
        ),
        w=12,
        h=8,
    )

    grid.row(row("Freshness", panel_id=ids.auto()))
    buckets = f"sum by (topic, le) (rate(streamkpi_event_lag_seconds_bucket[{_RATE}]))"
    lag_queries = [f"histogram_quantile({q}, {buckets})" for q in (0.5, 0.99)]
    grid.add(
        timeseries(
            "Event-time lag (p50, p99)",
            "Processing time minus event time of the records processed, by topic "
            "(histogram `streamkpi_event_lag_seconds`): how old events are when counted. "
            "Queries: " + "; ".join(f"`{q}`" for q in lag_queries) + ".",
            [
                target(lag_queries[0], "p50 {{topic}}"),
                target(lag_queries[1], "p99 {{topic}}"),
            ],
            panel_id=PipelinePanel.event_lag.value,
            unit="s",
            min_value=0,
        ),
        w=8,
        h=8,
    )
    consumer_lag = "sum by (topic) (streamkpi_consumer_lag)"
    grid.add(
        timeseries(
            "Consumer lag",
            "Records of the input partitions not yet processed (end offset - next offset), "
            f"summed by topic over partitions and workers. Query: `{consumer_lag}`.",
            [target(consumer_lag, "{{topic}}")],
            panel_id=PipelinePanel.consumer_lag.value,
            unit="short",
            min_value=0,
        ),
        w=8,
        h=8,
    )
    delay = "max by (topic) (streamkpi_watermark_delay_seconds)"
    grid.add(
        timeseries(
            "Watermark delay",
            "Wall clock minus the event-time watermark (latest event time - allowed lateness) "
            "of the most behind partition per topic: how far behind real time windows close "
            f"and timers fire. Query: `{delay}`.",
            [target(delay, "{{topic}}")],
            panel_id=PipelinePanel.watermark_delay.value,
            unit="s",
        ),
        w=8,
        h=8,
    )

    grid.row(row("Workers and label caps", panel_id=ids.auto()))
    workers = "count(streamkpi_owned_partitions)"
    owned = "sum by (instance) (streamkpi_owned_partitions)"
    grid.add(
        timeseries(
            "Workers and owned partitions",
            "Workers scraped (one `streamkpi_owned_partitions` series each) and the input "
            "partitions each one owns; a worker missing from the scrape lowers every KPI. "
            f"Queries: `{workers}`; `{owned}`.",
            [target(workers, "workers"), target(owned, "{{instance}} partitions")],
            panel_id=PipelinePanel.workers.value,
            unit="short",
            min_value=0,
        ),
        w=12,
        h=8,
    )
    overflows = f"sum by (label) (rate(streamkpi_label_overflows_total[{_RATE}]))"
    grid.add(
        timeseries(
            "Label-cap overflows/s",
            "Label values folded into `other` by the cardinality caps (labels.max_campaigns, "
            "labels.max_pages) per second, by label. Sustained overflows mean campaigns or "
            f"pages are hidden in `other`: raise the cap or allow-list them. Query: `{overflows}`.",
            [target(overflows, "{{label}}")],
            panel_id=PipelinePanel.label_overflows.value,
            unit="cps",
            min_value=0,
        ),
        w=12,
        h=8,
    )

    grid.row(row("Checkpoints and restores", panel_id=ids.auto(), collapsed=True))
    checkpoints = f"sum(rate(streamkpi_checkpoints_total[{_RATE}]))"
    duration = (
        f"sum(rate(streamkpi_checkpoint_seconds_total[{_RATE}])) / "
        f"(sum(rate(streamkpi_checkpoints_total[{_RATE}])) > 0)"
    )
    replayed = f"sum(increase(streamkpi_replayed_records_total[{_RATE}]))"
    dropped = f"sum(increase(streamkpi_dropped_bucket_writes_total[{_RATE}]))"
    for title, query, unit, help_text in (
        (
            "Checkpoints/s",
            checkpoints,
            "ops",
            "Checkpoint transactions committed per second (state + offsets + dead letters).",
        ),
        ("Checkpoint duration", duration, "s", "Average time one checkpoint transaction took."),
        (
            "Replayed records",
            replayed,
            "short",
            "Records skipped after a restore because the restored state already held them.",
        ),
        (
            "Dropped bucket writes",
            dropped,
            "short",
            "Cohort writes into already expired buckets (sessions longer than the longest window).",
        ),
    ):
        grid.add(
            timeseries(
                title,
                f"{help_text} Query: `{query}`.",
                [target(query, title)],
                panel_id=ids.auto(),
                unit=unit,
                min_value=0,
            ),
            w=6,
            h=8,
        )
    return _dashboard(
        Dashboard.pipeline,
        "StreamKPI / Pipeline health",
        "Is the pipeline healthy: events by outcome, dead letters, lags, watermarks, label "
        "caps, workers, checkpoints.",
        grid,
        [],
    )


# --------------------------------------------------------------------------------------
# Files


def build_dashboards(
    windows: Sequence[str],
    currency: str = "EUR",
    thresholds: Mapping[str, Thresholds] | None = None,
) -> dict[Dashboard, Json]:
    """Return every dashboard's JSON model.

    ``windows`` are the exported windows (the ``windows`` setting), ``currency`` the
    reporting currency, ``thresholds`` the alert bounds per KPI name, ``(lower, upper)``,
    either may be None: stat panels turn red outside them and time series draw them.
    """
    if not windows:
        raise ValueError("at least one window is needed")
    bounds = dict(thresholds or {})
    unknown = sorted(set(bounds) - {k.name for k in KPIS})
    if unknown:
        raise ValueError(f"thresholds for unknown KPIs: {', '.join(unknown)}")
    for name in (*FUNNEL, *CAMPAIGN_VOLUMES, *EMAIL_VOLUMES, *ECOMMERCE_VOLUMES, *_CUSTOMERS):
        if name not in _COMPONENTS:
            raise ValueError(f"the dashboards show component {name!r}, which the spec lacks")
    ctx = _Context(windows, currency, bounds)
    builders = {
        Dashboard.overview: _overview,
        Dashboard.campaigns: _campaigns,
        Dashboard.email: _email,
        Dashboard.ecommerce: _ecommerce,
        Dashboard.pipeline: _pipeline,
    }
    return {uid: build(ctx, _Ids()) for uid, build in builders.items()}


def dashboard_files(
    windows: Sequence[str],
    currency: str = "EUR",
    thresholds: Mapping[str, Thresholds] | None = None,
) -> dict[Path, str]:
    """Return the dashboard files (path relative to grafana/ -> JSON text)."""
    return {
        DASHBOARD_DIR / f"{uid.value}.json": json.dumps(model, indent=2, sort_keys=True) + "\n"
        for uid, model in build_dashboards(windows, currency, thresholds).items()
    }


_DATASOURCES = f"""\
# Generated by `streamkpi dashboards generate`; do not edit (a test fails on any diff).
# The Prometheus that scrapes the workers and evaluates deploy/prometheus/rules. The uid is
# the one every dashboard panel and alert link refers to (streamkpi/dashboards/ids.py).
apiVersion: 1

datasources:
  - name: Prometheus (StreamKPI)
    uid: {DATASOURCE_UID}
    type: prometheus
    access: proxy
    # The docker-compose service name; change it for another Prometheus.
    url: http://prometheus:9090
    isDefault: true
    editable: false
    jsonData:
      # deploy/prometheus/prometheus.yml scrapes every 15 s: $__rate_interval needs it.
      timeInterval: 15s
"""

_PROVIDERS = f"""\
# Generated by `streamkpi dashboards generate`; do not edit (a test fails on any diff).
# Loads the generated dashboards (grafana/dashboards/*.json, mounted at the path below)
# into one folder. They are generated from the KPI spec: change the generator, not the UI.
apiVersion: 1

providers:
  - name: streamkpi
    orgId: 1
    folder: {FOLDER}
    type: file
    disableDeletion: true
    allowUiUpdates: false
    updateIntervalSeconds: 30
    options:
      path: /var/lib/grafana/dashboards
"""


def provisioning_files() -> dict[Path, str]:
    """Return Grafana's provisioning files (path relative to grafana/ -> YAML text)."""
    return {
        Path("provisioning/datasources/prometheus.yml"): _DATASOURCES,
        Path("provisioning/dashboards/streamkpi.yml"): _PROVIDERS,
    }


def generated_files(
    windows: Sequence[str],
    currency: str = "EUR",
    thresholds: Mapping[str, Thresholds] | None = None,
) -> dict[Path, str]:
    """Return every generated file under grafana/ (relative path -> text)."""
    return {**dashboard_files(windows, currency, thresholds), **provisioning_files()}
