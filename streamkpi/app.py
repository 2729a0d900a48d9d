"""The Faust app: topics, agents, the checkpoint timer and the web pages, from one Settings."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import faust
import mode.loop
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from faust.auth import SASLCredentials, SSLCredentials
from faust.types import TP
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streamkpi.agents import sources
from streamkpi.config import Settings
from streamkpi.events import ParseContext
from streamkpi.exporter.api import ApiError, kpis_document
from streamkpi.exporter.health import HealthCollector
from streamkpi.exporter.kpis import KpiCollector
from streamkpi.exporter.pipeline import PipelineMetrics
from streamkpi.pipeline import Pipeline
from streamkpi.statestore import StateStore
from streamkpi.topics import ssl_context
from streamkpi.web.history import KpiHistory
from streamkpi.web.pages import attach_web_view
from streamkpi.web.sources import LocalSource

__all__ = ["Runtime", "create_app", "new_worker", "parse_context"]

log = logging.getLogger(__name__)

EXIT_BROKER_LOST = 69  # EX_UNAVAILABLE: the broker stopped answering; a supervisor restarts us
# A ListOffsets answers in milliseconds on a live broker. After a broker restart Faust's
# consumer thread can stop answering for good (#12: its end_offsets timed out after 90 s,
# then the worker hung at exit on that thread), so the worker exits instead.
END_OFFSETS_TIMEOUT_S = 20.0


def parse_context(settings: Settings) -> ParseContext:
    """Return the parsing limits and currency rates of ``settings``."""
    return ParseContext(
        max_bytes=settings.max_event_bytes,
        max_future_s=settings.max_future_s,
        max_label_chars=settings.labels.max_label_chars,
        rates=dict(settings.currency_rates),
        reporting_currency=settings.reporting_currency,
    )


def _credentials(settings: Settings) -> SASLCredentials | SSLCredentials | None:
    sec = settings.kafka
    # One TLS context for Faust and the plain aiokafka clients, with the client certificate
    # for mutual TLS. Faust's SSLCredentials(cafile=...) cannot build one (#12: it passes
    # purpose=None to ssl.create_default_context, a TypeError), so it gets the context.
    context = ssl_context(settings)
    if sec.protocol == "SSL":
        return SSLCredentials(context)
    if sec.protocol.startswith("SASL"):
        return SASLCredentials(
            username=sec.sasl_username,
            password=sec.sasl_password.get_secret_value() if sec.sasl_password else None,
            mechanism=sec.sasl_mechanism,
            ssl_context=context,
        )
    return None


@dataclass
class Runtime:
    """What the agents, pages and signals share."""

    settings: Settings
    registry: CollectorRegistry
    metrics: PipelineMetrics
    pipeline: Pipeline
    store: StateStore


def create_app(settings: Settings) -> tuple[faust.App, Runtime]:
    """Build the Faust app, its agents, checkpoint timer and pages for ``settings``."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    app = sources.SourceApp(
        settings.app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",")],
        broker_credentials=_credentials(settings),
        store="memory://",  # Faust tables are not used for KPI state (see statestore.py)
        datadir=str(settings.data_dir / "faust"),
        autodiscover=False,
        topic_partitions=settings.topic_partitions,
        # Faust's 60 s default makes a restarted worker wait a minute to rejoin its group.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        consumer_auto_offset_reset="earliest",
        # Records are acked by checkpoint transactions, never by Faust (streams are noack):
        # waiting for Faust acks at a rebalance would wait forever, and Faust's own
        # "nothing committed" livelock warnings would be false alarms.
        stream_wait_empty=False,
        broker_commit_livelock_soft_timeout=7 * 86_400,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        # /table/{name}/{key} would publish table contents (visitor ids) to anyone on the port.
        web_tables_enabled=False,
    )
    registry = CollectorRegistry(auto_describe=True)
    metrics = PipelineMetrics(registry, [kind.value for kind in sources.KINDS])
    store = StateStore(settings)
    owned: set[int] = set()

    async def end_offsets(tps: list[TopicPartition]) -> Mapping[TopicPartition, int]:
        try:
            ends = await asyncio.wait_for(
                app.consumer.highwaters(*(TP(tp.topic, tp.partition) for tp in tps)),
                timeout=END_OFFSETS_TIMEOUT_S,
            )
        except (TimeoutError, KafkaError) as exc:
            # Exiting is safe: state and offsets are only ever committed together (#12).
            log.critical(
                "Kafka at %s did not answer for end offsets (%s); exiting with code %d so "
                "a supervisor restarts the worker",
                settings.bootstrap_servers,
                type(exc).__name__,
                EXIT_BROKER_LOST,
            )
            os._exit(EXIT_BROKER_LOST)
        return {TopicPartition(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    pipeline = Pipeline(
        settings,
        metrics,
        store,
        owned=lambda: owned,
        end_offsets=end_offsets,
        parse_ctx=parse_context(settings),
    )
    runtime = Runtime(settings, registry, metrics, pipeline, store)
    source_topics = set(pipeline.topic_of.values())

    # mode's Signal.connect annotation rejects every async handler (mypy sees a Coroutine,
    # not the Awaitable | None union it lists), hence the ignores.
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(_app: Any, *args: Any, **_kwargs: Any) -> None:
        revoked: set[TP] = args[0]
        partitions = {tp.partition for tp in revoked if tp.topic in source_topics}
        owned.difference_update(partitions)
        await pipeline.on_revoked(partitions)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(_app: Any, *args: Any, **_kwargs: Any) -> None:
        assigned: set[TP] = args[0]
        owned.update(tp.partition for tp in assigned if tp.topic in source_topics)

    @app.timer(interval=settings.checkpoint_interval_s, name="streamkpi.checkpoint")  # type: ignore[untyped-decorator]
    async def checkpoint() -> None:
        await pipeline.restore_owned()
        await pipeline.advance_idle()
        await pipeline.checkpoint()

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def on_shutdown(_app: Any, *_args: Any, **_kwargs: Any) -> None:
        await pipeline.checkpoint()
        await store.stop()

    sources.attach(app, runtime)
    registry.register(HealthCollector(pipeline))
    # Not in the registry: it renders its own (much faster) exposition text.
    kpi_collector = KpiCollector(pipeline)
    _attach_pages(app, registry, kpi_collector, pipeline)
    history = KpiHistory(
        sample_s=settings.web_view.sample_s,
        history_s=settings.web_view.history_s,
        max_series=settings.web_view.max_series,
    )
    local = LocalSource(
        pipeline.window_values,
        registry,
        history,
        partitions=lambda: pipeline.owned() & pipeline.engines.keys(),
        topic_partitions=settings.topic_partitions,
    )
    attach_web_view(app, settings, local)
    return app, runtime


def _attach_pages(
    app: faust.App, registry: CollectorRegistry, kpis: KpiCollector, pipeline: Pipeline
) -> None:
    windows = pipeline.settings.windows

    @app.page("/metrics")
    class Metrics(View):
        """Prometheus exposition: pipeline health and the KPI component gauges."""

        async def get(self, request: Request) -> Response:
            """Render everything at scrape time."""
            body = generate_latest(registry) + kpis.render()
            # Faust's content_type= makes aiohttp refuse CONTENT_TYPE_LATEST's charset
            # (HTTP 500, see ../shared/notes/faust.md); the header avoids that check.
            return self.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/kpis")
    class Kpis(View):
        """KPI values and their components for one window, from this worker's partitions."""

        async def get(self, request: Request) -> Response:
            """Answer ``?window=5m&campaign=...&channel=...``; 400 with a reason if bad."""
            now = time.time()
            try:
                document = kpis_document(
                    pipeline.window_values(now),
                    # Every (name, value) pair: dict() would keep only the first of a
                    # repeated ?window= (#12).
                    list(request.query.items()),
                    windows=windows,
                    reference_s=now,
                    partitions=pipeline.owned() & pipeline.engines.keys(),
                )
            except ApiError as exc:
                return self.json({"error": str(exc)}, status=400)
            return self.json(document)

    @app.page("/healthz")
    class Health(View):
        """Liveness: the web server answers."""

        async def get(self, request: Request) -> Response:
            """Say the worker is alive."""
            return self.json({"status": "ok"})


def new_worker(app: faust.App, settings: Settings) -> faust.Worker:
    """Return the Faust worker that runs ``app`` (``execute_from_commandline`` starts it).

    Runs it on uvloop where uvloop is installed (a dependency except on Windows): Faust's
    per-record machinery is mostly event-loop work, which uvloop does faster. This sets
    the process's event loop policy, so call it before anything creates a loop.
    """
    if importlib.util.find_spec("uvloop") is not None:
        mode.loop.use("uvloop")  # Faust's documented switch (its --loop=uvloop option)
    worker = faust.Worker(app, loglevel=settings.log_level)
    # At log levels from warning up, Faust's start-up spinner sets the root logger to DEBUG
    # for good, so every library's debug call (aiokafka logs each produced record) builds
    # a LogRecord: ~6% of a worker's time. Without a spinner the level stays as configured.
    worker.spinner = None
    return worker
