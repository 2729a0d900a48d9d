"""The Faust app: topics, tables and agents wired from one Settings object."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.auth import SASLCredentials, SSLCredentials
from faust.types import AppT, EventT, TopicT
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streamkpi.config import Settings
from streamkpi.dlq import DeadLetter, dead_letter_headers, encode_dead_letter
from streamkpi.events import Kind, ParseContext, Rejection
from streamkpi.exporter.pipeline import Outcome, PipelineMetrics

__all__ = ["Runtime", "create_app", "parse_context"]


def parse_context(settings: Settings) -> ParseContext:
    """Return the parsing limits and currency rates of ``settings``."""
    return ParseContext(
        max_bytes=settings.max_event_bytes,
        max_future_s=settings.max_future_s,
        rates=dict(settings.currency_rates),
        reporting_currency=settings.reporting_currency,
    )


def _credentials(settings: Settings) -> SASLCredentials | SSLCredentials | None:
    sec = settings.kafka
    cafile = str(sec.ssl_cafile) if sec.ssl_cafile else None
    if sec.protocol == "SSL":
        return SSLCredentials(cafile=cafile)
    if sec.protocol.startswith("SASL"):
        ssl_context = None
        if sec.protocol == "SASL_SSL":
            ssl_context = SSLCredentials(cafile=cafile).context
        return SASLCredentials(
            username=sec.sasl_username,
            password=sec.sasl_password.get_secret_value() if sec.sasl_password else None,
            mechanism=sec.sasl_mechanism,
            ssl_context=ssl_context,
        )
    return None


@dataclass
class Runtime:
    """What the agents share: settings, parse limits, metrics and the DLQ topic."""

    settings: Settings
    app: AppT
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )
    metrics: PipelineMetrics = field(init=False)
    parse_ctx: ParseContext = field(init=False)
    dlq: TopicT = field(init=False)

    def __post_init__(self) -> None:
        """Create the counters and declare the DLQ topic."""
        self.metrics = PipelineMetrics(self.registry, [kind.value for kind in Kind])
        self.parse_ctx = parse_context(self.settings)
        self.dlq = self.app.topic(
            self.settings.topics.dlq, key_serializer="raw", value_serializer="raw"
        )

    def owned_partitions(self, topic: str) -> set[int]:
        """Return the partitions of ``topic`` this worker actively owns right now."""
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}

    async def reject(self, kind: Kind, event: EventT[Any], rejection: Rejection) -> None:
        """Send the record behind ``event`` to the DLQ with ``rejection``'s reason, and count it."""
        message = event.message
        value = message.value if isinstance(message.value, bytes) else b""
        letter = DeadLetter(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            timestamp_ms=round(message.timestamp * 1000) if message.timestamp else None,
            key=message.key if isinstance(message.key, bytes) else None,
            value=value,
            reason=rejection.reason.value,
            detail=rejection.detail,
        )
        # Sent through Faust's attachments: published before the source offset is committed.
        await self.dlq.send(
            key=letter.key,
            value=encode_dead_letter(
                letter, max_value_bytes=self.settings.max_event_bytes, now_s=time.time()
            ),
            headers=dead_letter_headers(letter),
        )
        outcome = Outcome.late if rejection.reason.value == "late" else Outcome.invalid
        self.metrics.count(kind.value, outcome)
        self.metrics.dead_lettered(kind.value, rejection.reason.value)


def create_app(settings: Settings) -> tuple[faust.App, Runtime]:
    """Build the Faust app and its agents for ``settings``."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",")],
        broker_credentials=_credentials(settings),
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        autodiscover=False,
        topic_partitions=settings.topic_partitions,
        # Faust's 60 s default makes a restarted worker wait a minute to rejoin its group.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        # /table/{name}/{key} would publish table contents (visitor ids) to anyone on the port.
        web_tables_enabled=False,
    )
    runtime = Runtime(settings=settings, app=app)

    from streamkpi.agents import pageviews

    pageviews.attach(app, runtime)
    _attach_pages(app, runtime)
    return app, runtime


def _attach_pages(app: faust.App, runtime: Runtime) -> None:
    registry = runtime.registry

    @app.page("/metrics")
    class Metrics(View):
        """Prometheus exposition of everything in the worker's registry."""

        async def get(self, request: Request) -> Response:
            """Render the registry at scrape time."""
            body = generate_latest(registry)
            # Faust's content_type= makes aiohttp refuse CONTENT_TYPE_LATEST's charset
            # (HTTP 500, see ../shared/notes/faust.md); the header avoids that check.
            return self.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz")
    class Health(View):
        """Liveness: the web server answers."""

        async def get(self, request: Request) -> Response:
            """Say the worker is alive."""
            return self.json({"status": "ok"})
