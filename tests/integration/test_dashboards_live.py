"""Every dashboard query answers with data from a real Prometheus scraping a real worker.

A generated stream ending a few seconds ago (so even the 5-minute window holds every kind
of event) is produced in two parts to a real broker; one `streamkpi worker` counts it and a
real Prometheus, loaded with the project's rule files, scrapes it every second. Then every
variable query of every dashboard is resolved against Prometheus, and every panel query,
with the variables replaced by those real values (every window), runs as a range query over
the data's span: no error and at least one finite value, for every one of them.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from _prometheus import RULE_FILES, PrometheusProcess
from _workers import WorkerProcess, wait_for
from aiokafka import AIOKafkaProducer

from streamkpi.events import Kind
from streamkpi.generator.stream import (
    CURRENCY_RATES,
    ENTITY_FIELD,
    GenConfig,
    Record,
    generate,
    partition_for,
)
from streamkpi.localkafka import LocalKafka, create_topics

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "grafana" / "dashboards").glob("*.json"))
PARTITIONS = 2
SCRAPE_S = 1  # PrometheusProcess scrapes and evaluates every second
SPAN_S = 2 * 3600
ENV = {
    "STREAMKPI_BUCKET_S": "60",
    "STREAMKPI_WINDOWS": "5m,1h,24h",  # the committed dashboards' windows
    "STREAMKPI_ALLOWED_LATENESS_S": "60",
    # Customers churn 40 min after their last purchase: the 2 h span holds churns in the
    # last 5 minutes, and customers active at the start of every window.
    "STREAMKPI_CHURN_AFTER_S": "2400",
    # Carts of the last few minutes are abandoned before the test reads the 5m window.
    "STREAMKPI_ABANDON_AFTER_S": "60",
    # No idle advance: the second part of the stream must not arrive late.
    "STREAMKPI_IDLE_AFTER_S": "3600",
    # Fewer slots than campaigns: the label-cap overflow panel gets real overflows.
    "STREAMKPI_LABELS__MAX_CAMPAIGNS": "12",
    "STREAMKPI_CURRENCY_RATES": orjson.dumps(
        {k: str(v) for k, v in CURRENCY_RATES.items()}
    ).decode(),
    "STREAMKPI_CHECKPOINT_INTERVAL_S": "0.5",
    "STREAMKPI_TOPIC_PARTITIONS": str(PARTITIONS),
    "STREAMKPI_LOG_LEVEL": "warning",
}


def stream_config(now_s: float) -> GenConfig:
    """A small stream over the last 2 h with every fault mixed in (invalid, late, duplicate)."""
    return GenConfig(
        seed=11,
        start_s=now_s - SPAN_S,
        duration_s=SPAN_S - 10,
        partitions=PARTITIONS,
        # The last of 16 e-mail campaigns is sent 10 min before the end, over 10 min.
        email_campaigns=16,
        visitors=2500,
        recipients=80,
        customers=1500,
        respondents=600,
        adspend_every_s=60,
        allowed_lateness_s=60,
        disorder_s=30,
    )


def event(kind: Kind, ts_s: float, **fields: Any) -> Record:
    """Return one hand-written event of ``kind``, keyed and partitioned like the generator's."""
    key = str(fields[ENTITY_FIELD[kind]]).encode()
    value = {"event_id": f"hand-{uuid.uuid4().hex}", "ts": ts_s, **fields}
    return Record(kind, partition_for(key, PARTITIONS), key, orjson.dumps(value))


def history(now_s: float) -> list[Record]:
    """A customer who bought 24 h 5 min ago: active at the start of the 24 h window.

    Churn rate divides by the customers active at a window's start; without a purchase
    before the 24 h window began (and less than churn_after before it), it has no value.
    """
    ts = now_s - 86_400 - 300
    fields = {"campaign": "spring_sale", "channel": "paid", "currency": "EUR"}
    return [event(Kind.orders, ts, customer_id="hist-cu1", type="purchase", amount="10", **fields)]


def tail(now_s: float) -> list[Record]:
    """Rare events the 5-minute window must hold whatever the generator drew there.

    The generated stream has bounces, machine opens, unsubscribes, complaints, new visitors,
    abandoned and bought carts, but too few for one of each to fall in its last 5 minutes
    every time: these guarantee it (ts 40 s before the end, so the carts' timers fire too).
    """
    ts = now_s - 40
    mail = {"campaign": "c22"}
    bought = {"customer_id": "tail-cu2", "cart_id": "tail-cart2"} | {
        "campaign": "spring_sale",
        "channel": "paid",
    }
    return [
        event(Kind.emails, ts, recipient_id="tail-r1", type="sent", **mail),
        event(Kind.emails, ts, recipient_id="tail-r1", type="bounced", bounce_kind="hard", **mail),
        event(Kind.emails, ts, recipient_id="tail-r2", type="sent", **mail),
        event(Kind.emails, ts, recipient_id="tail-r2", type="delivered", **mail),
        event(Kind.emails, ts, recipient_id="tail-r2", type="opened", machine_open=True, **mail),
        event(Kind.emails, ts, recipient_id="tail-r2", type="opened", **mail),
        event(Kind.emails, ts, recipient_id="tail-r2", type="clicked", **mail),
        event(Kind.emails, ts, recipient_id="tail-r2", type="unsubscribed", **mail),
        event(Kind.emails, ts, recipient_id="tail-r2", type="complained", **mail),
        event(Kind.pageviews, ts, visitor_id="tail-v1", utm_medium="cpc", campaign="spring_sale"),
        event(
            Kind.orders,
            ts - 120,  # abandoned once the watermark (latest ts - 60 s lateness) passes +60 s
            customer_id="tail-cu1",
            type="cart_created",
            cart_id="tail-cart",
            campaign="spring_sale",
            channel="paid",
        ),
        # A cart bought within abandon_after (60 s here; the generator's buy much later),
        # after the generated stream's end (now - 10 s) so that neither event is late.
        event(Kind.orders, now_s - 8, type="cart_created", **bought),
        event(Kind.orders, now_s - 6, type="purchase", amount="20", currency="EUR", **bought),
    ]


async def produce(bootstrap: str, topics: dict[Kind, str], records: list[Record]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(topics[r.kind], r.value, key=r.key, partition=r.partition)
            for r in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def api(prometheus: PrometheusProcess, path: str, **params: str) -> Any:
    """GET a Prometheus API path; return its data, or raise with Prometheus's error."""
    url = f"{prometheus.url}{path}?" + urllib.parse.urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{path} {params}: {error.read().decode()}") from None
    assert body["status"] == "success", body
    return body["data"]


def total_consumed(prometheus: PrometheusProcess) -> float:
    result = prometheus.query("sum(streamkpi_events_total)")
    return result[0][1] if result else 0.0


def panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in model["panels"]:
        yield panel
        yield from panel.get("panels", [])


_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def grafana_regex(values: list[str]) -> str:
    """Return a multi-value variable as Grafana formats it in a regex matcher."""
    escaped = [re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def substitute(expr: str, variables: dict[str, str]) -> str:
    # Longest names first: $__rate_interval before $__range, $campaign before $c...
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace(f"${{{name}}}", variables[name]).replace(f"${name}", variables[name])
    assert "$" not in expr, f"unknown variable left in {expr!r}"
    return expr


def resolve(
    prometheus: PrometheusProcess, model: dict[str, Any], start: float, end: float
) -> dict[str, str]:
    """Resolve the dashboard's query variables against Prometheus, in order (chained ones)."""
    resolved: dict[str, str] = {}
    for variable in model["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = _LABEL_VALUES.match(variable["query"])
        assert match, variable["query"]
        selector = substitute(match["selector"], resolved)
        values = api(
            prometheus,
            f"/api/v1/label/{match['label']}/values",
            **{"match[]": selector, "start": str(start), "end": str(end)},
        )
        assert values, f"{model['uid']}: variable {variable['name']} has no values"
        resolved[variable["name"]] = grafana_regex(values)
    return resolved


def check_dashboards(prometheus: PrometheusProcess, start: float) -> list[str]:
    """Run every panel query of every dashboard; return what failed (empty: all good)."""
    end = time.time()
    fixed = {
        "__rate_interval": f"{4 * SCRAPE_S}s",  # Grafana: max(4 x scrape, interval + scrape)
        "__interval": f"{SCRAPE_S}s",
        "__range": f"{math.ceil(end - start)}s",
    }
    problems: list[str] = []
    for path in DASHBOARDS:
        model = json.loads(path.read_text())
        try:
            variables = fixed | resolve(prometheus, model, start, end)
        except AssertionError as error:
            problems.append(str(error))
            continue
        windows = [
            [o["value"] for o in v["options"]]
            for v in model["templating"]["list"]
            if v["name"] == "window"
        ]
        for window in windows[0] if windows else [None]:
            values = variables | ({"window": window} if window else {})
            for panel in panels(model):
                for target in panel.get("targets", []):
                    expr = substitute(target["expr"], values)
                    where = f"{model['uid']} / {panel['title']} / {target['refId']} ({window})"
                    try:
                        result = api(
                            prometheus,
                            "/api/v1/query_range",
                            query=expr,
                            start=str(start),
                            end=str(end),
                            step=f"{SCRAPE_S}s",
                        )
                    except AssertionError as error:
                        problems.append(f"{where}: {error}")
                        continue
                    finite = [
                        v
                        for series in result["result"]
                        for _, v in series["values"]
                        if math.isfinite(float(v))
                    ]
                    if not finite:
                        problems.append(f"{where}: no finite value for {expr}")
    return problems


async def test_every_dashboard_query_returns_data_from_a_live_prometheus(
    kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    now = time.time()
    generated = generate(stream_config(now))
    assert {r.kind for r in generated} == set(Kind), "the stream lacks a topic"
    # In production order: history first (older than everything), the tail last.
    records = history(now) + generated + tail(now)
    run = uuid.uuid4().hex[:6]
    app_id = f"dash-{run}"
    topics = {kind: f"{kind.value}-{run}" for kind in Kind}
    await create_topics(
        kafka_broker.bootstrap_servers, list(topics.values()), partitions=PARTITIONS
    )
    env = {
        **ENV,
        "STREAMKPI_APP_ID": app_id,
        "STREAMKPI_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "STREAMKPI_TOPICS__DLQ": f"{app_id}-dlq",
        "STREAMKPI_TOPICS__SNAPSHOTS": f"{app_id}-snapshots",
        "STREAMKPI_DATA_DIR": str(tmp_path / app_id),
        **{f"STREAMKPI_TOPICS__{kind.value.upper()}": topic for kind, topic in topics.items()},
    }
    worker = WorkerProcess(env, tmp_path / "worker.log")
    prometheus = PrometheusProcess(
        tmp_path / "prometheus", [f"127.0.0.1:{worker.web_port}"], RULE_FILES
    )
    prometheus.start()
    start = time.time()
    worker.start()
    try:
        # Two parts, the second after Prometheus has scraped the first: rates, the lag
        # histogram's quantiles and checkpoint durations then have a step with traffic.
        first, second = records[: len(records) * 9 // 10], records[len(records) * 9 // 10 :]
        await produce(kafka_broker.bootstrap_servers, topics, first)

        def scraped(count: int) -> bool:
            return total_consumed(prometheus) >= count

        await wait_for(
            lambda: scraped(len(first)),
            timeout_s=90,
            what="Prometheus to scrape the first part consumed",
            on_timeout=worker.log_tail,
        )
        await produce(kafka_broker.bootstrap_servers, topics, second)
        await wait_for(
            lambda: scraped(len(records)),
            timeout_s=60,
            what="Prometheus to scrape the whole stream consumed",
            on_timeout=worker.log_tail,
        )
        assert total_consumed(prometheus) == len(records)  # each record counted once

        problems: list[str] = []

        def all_answer() -> bool:
            nonlocal problems
            problems = check_dashboards(prometheus, start)
            return not problems

        # The rules evaluate a second after each scrape; poll until every query has data.
        await wait_for(
            all_answer,
            timeout_s=45,
            what="every dashboard query to return data",
            on_timeout=lambda: f"{len(problems)} failing:\n" + "\n".join(problems[:40]),
        )
        # The campaign selection with every campaign and channel selected is the overall
        # KPI that the rules compute on their own: the sums-then-divide queries add up.
        campaigns = json.loads((REPO / "grafana/dashboards/streamkpi-campaigns.json").read_text())
        variables = resolve(prometheus, campaigns, start, time.time()) | {"window": "24h"}
        roas = next(p for p in panels(campaigns) if p["type"] == "stat" and p["title"] == "ROAS")
        selection = substitute(roas["targets"][0]["expr"], variables)
        got = prometheus.query(selection)
        want = prometheus.query("overall:streamkpi_roas:ratio24h")
        assert len(got) == len(want) == 1
        assert abs(got[0][1] - want[0][1]) <= 1e-9 * abs(want[0][1]), (got, want)
        assert 0 < want[0][1] < 100
    finally:
        prometheus.stop()
        assert worker.stop() == 0, worker.log_tail()
