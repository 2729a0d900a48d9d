"""The ``streamkpi`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import yaml

from streamkpi.config import ConfigError, Settings, load_settings
from streamkpi.dashboards.cli import dashboards
from streamkpi.demo import demo
from streamkpi.generator.cli import generate
from streamkpi.rules.cli import rules

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

EXIT_USAGE = 2  # bad configuration, like click's own usage errors
EXIT_FAILURE = 1


def _fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    click.echo(f"streamkpi: error: {message}", err=True)
    sys.exit(code)


def _say(message: str) -> None:
    click.echo(f"streamkpi: {message}", err=True)


@contextlib.contextmanager
def _quiet_kafka_logs() -> Iterator[None]:
    """Keep aiokafka's per-connection ERROR logs off stderr during a short CLI call.

    Without logging configured, Python's last-resort handler prints them before the one-line
    error (#12: a wrong password gave two lines); that line carries the same cause.
    """
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _run_quietly(coro: Coroutine[Any, Any, T]) -> T:
    with _quiet_kafka_logs():
        return asyncio.run(coro)


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    """Load settings from the group's --config, the environment and non-None ``overrides``."""
    config_file: Path | None = ctx.obj.get("config_file") if ctx.obj else None
    try:
        return load_settings(config_file, **{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)


def _kafka_options(func: F) -> F:
    options = [
        click.option(
            "--bootstrap-servers",
            metavar="HOST:PORT[,...]",
            help="Kafka bootstrap servers [env STREAMKPI_BOOTSTRAP_SERVERS;"
            " default 127.0.0.1:9092].",
        ),
        click.option(
            "--web-host",
            metavar="ADDR",
            help="Address the worker's web server (/metrics) binds [default 127.0.0.1].",
        ),
        click.option(
            "--web-port", type=int, metavar="PORT", help="Port of the web server [default 6066]."
        ),
        click.option(
            "--log-level",
            type=click.Choice(["debug", "info", "warning", "error"]),
            help="Log level [default info].",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Settings come from STREAMKPI_* environment variables (nested ones with __, e.g. "
    "STREAMKPI_TOPICS__PAGEVIEWS) and an optional YAML file; command-line options win. "
    "See `streamkpi config show` for the effective values.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="STREAMKPI_CONFIG_FILE",
    help="YAML settings file [env STREAMKPI_CONFIG_FILE].",
)
@click.version_option(package_name="streamkpi")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """streamkpi: real-time marketing KPIs from Kafka events, exported to Prometheus."""
    ctx.ensure_object(dict)
    ctx.obj["config_file"] = config_file


@cli.command(short_help="Run a worker (consume, count, serve /metrics).")
@_kafka_options
@click.option(
    "--create-topics/--no-create-topics",
    default=True,
    show_default=True,
    help="Create missing input/DLQ topics before starting.",
)
@click.option(
    "--prometheus-url",
    metavar="URL",
    help="Prometheus base URL: the live page (/ui) then shows every worker's values, "
    "summed by Prometheus, not only this worker's partitions "
    "[env STREAMKPI_WEB_VIEW__PROMETHEUS_URL].",
)
@click.option(
    "--alertmanager-url",
    metavar="URL",
    help="Alertmanager base URL: the live page lists its firing alerts "
    "[env STREAMKPI_WEB_VIEW__ALERTMANAGER_URL].",
)
@click.pass_context
def worker(
    ctx: click.Context,
    bootstrap_servers: str | None,
    web_host: str | None,
    web_port: int | None,
    log_level: str | None,
    create_topics: bool,
    prometheus_url: str | None,
    alertmanager_url: str | None,
) -> None:
    """Run a worker: consume the event topics, count KPIs, serve /metrics.

    Several workers with the same app_id share the partitions of the input topics
    (one Kafka consumer group). Stop with Ctrl-C or SIGTERM. The live page is at /ui.
    """
    web_view = {
        k: v
        for k, v in (("prometheus_url", prometheus_url), ("alertmanager_url", alertmanager_url))
        if v is not None
    }
    settings = _settings(
        ctx,
        bootstrap_servers=bootstrap_servers,
        web_host=web_host,
        web_port=web_port,
        log_level=log_level,
        web_view=web_view or None,
    )
    _run_worker(settings, create_topics=create_topics)


def _run_worker(settings: Settings, *, create_topics: bool) -> NoReturn:
    # Imported here so `streamkpi --help` stays fast and never touches Faust.
    from streamkpi.app import create_app, new_worker
    from streamkpi.topics import TopicsError, ensure_topics

    # With --no-create-topics the partition counts are still checked (#12): a worker on an
    # input topic with other partitions than topic_partitions would miscount silently.
    try:
        _run_quietly(ensure_topics(settings, progress=_say, create=create_topics))
    except TopicsError as exc:
        _fail(str(exc))
    app, _runtime = create_app(settings)
    _say(
        f"worker {settings.app_id} on {settings.bootstrap_servers}; metrics at "
        f"{settings.web_url}/metrics, live page at {settings.web_url}/ui"
    )
    new_worker(app, settings).execute_from_commandline()


@cli.command(short_help="Run a local Kafka broker and a worker together.")
@click.option("--kafka-port", type=int, default=9092, show_default=True, help="Local broker port.")
@click.option(
    "--kafka-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".streamkpi/kafka"),
    show_default=True,
    help="Data directory of the local broker (kept between runs).",
)
@click.option("--web-port", type=int, metavar="PORT", help="Worker web port [default 6066].")
@click.pass_context
def run(ctx: click.Context, kafka_port: int, kafka_dir: Path, web_port: int | None) -> None:
    """Run the product on an embedded single-node Kafka: broker, topics and a worker.

    Fetches the Apache Kafka jars with Maven on first use (needs Java >= 17 and mvn),
    starts a KRaft broker on 127.0.0.1, creates the topics and runs one worker.
    Ctrl-C stops the worker, then the broker; nothing is left running.
    """
    from streamkpi.localkafka import LocalKafka, LocalKafkaError, ensure_jars
    from streamkpi.topics import TopicsError, ensure_topics

    bootstrap = f"127.0.0.1:{kafka_port}"
    settings = _settings(ctx, bootstrap_servers=bootstrap, web_port=web_port)
    try:
        libs = ensure_jars(progress=_say)
        broker = LocalKafka(port=kafka_port, data_dir=kafka_dir.resolve(), libs_dir=libs)
        _say(f"starting Kafka on {bootstrap} (data in {kafka_dir})")
        broker.start()
    except LocalKafkaError as exc:
        _fail(str(exc))
    worker_proc: subprocess.Popen[bytes] | None = None
    try:
        _run_quietly(ensure_topics(settings, progress=_say))
        env = {**os.environ, "STREAMKPI_BOOTSTRAP_SERVERS": bootstrap}
        if web_port is not None:
            env["STREAMKPI_WEB_PORT"] = str(web_port)
        args = [sys.executable, "-m", "streamkpi"]
        if ctx.obj.get("config_file"):
            args += ["--config", str(ctx.obj["config_file"])]
        worker_proc = subprocess.Popen([*args, "worker", "--no-create-topics"], env=env)
        _say(
            f"running: Kafka {bootstrap}, worker metrics {settings.web_url}/metrics "
            "- Ctrl-C to stop"
        )
        code = worker_proc.wait()
        if code != 0:
            _fail(f"worker exited with code {code}")
    except TopicsError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _say("stopping (Ctrl-C)")
    finally:
        if worker_proc is not None:
            _stop_child(worker_proc)
        _say("stopping Kafka")
        broker.stop()


def _stop_child(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """Ask ``proc`` to stop (it already got the terminal's SIGINT), then insist."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@cli.group(short_help="Fetch or start the local development broker.")
def kafka() -> None:
    """Manage the local development Kafka broker (Apache Kafka jars from Maven Central)."""


@kafka.command("fetch")
def kafka_fetch() -> None:
    """Download the broker jars into the cache (once), and print their directory."""
    from streamkpi.localkafka import LocalKafkaError, ensure_jars

    try:
        click.echo(ensure_jars(progress=_say))
    except LocalKafkaError as exc:
        _fail(str(exc))


@kafka.command("start")
@click.option("--port", type=int, default=9092, show_default=True, help="Broker port.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".streamkpi/kafka"),
    show_default=True,
    help="Log directory (kept between runs).",
)
def kafka_start(port: int, data_dir: Path) -> None:
    """Run a single-node KRaft broker on 127.0.0.1 in the foreground until Ctrl-C."""
    from streamkpi.localkafka import LocalKafka, LocalKafkaError, ensure_jars

    try:
        broker = LocalKafka(
            port=port, data_dir=data_dir.resolve(), libs_dir=ensure_jars(progress=_say)
        )
        broker.start()
    except LocalKafkaError as exc:
        _fail(str(exc))
    _say(f"Kafka is up on {broker.bootstrap_servers} - Ctrl-C to stop")
    # Blocked first, or Python's own SIGINT handler would swallow the signal sigwait waits for.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        signal.sigwait(stop_signals)
    finally:
        _say("stopping Kafka")
        broker.stop()


@cli.group(short_help="Create the topics streamkpi uses.")
def topics() -> None:
    """Manage the Kafka topics streamkpi reads and writes."""


@topics.command("create")
@click.option("--bootstrap-servers", metavar="HOST:PORT[,...]", help="Kafka bootstrap servers.")
@click.option(
    "--replication-factor",
    "topic_replication_factor",
    type=click.IntRange(1, 16),
    help="Replicas of the topics created [setting topic_replication_factor, default 1].",
)
@click.pass_context
def topics_create(
    ctx: click.Context, bootstrap_servers: str | None, topic_replication_factor: int | None
) -> None:
    """Create the input, state, DLQ and snapshot topics (idempotent).

    Missing topics get topic_partitions partitions and topic_replication_factor replicas;
    existing ones are checked to have topic_partitions partitions.
    """
    from streamkpi.topics import TopicsError, ensure_topics

    settings = _settings(
        ctx,
        bootstrap_servers=bootstrap_servers,
        topic_replication_factor=topic_replication_factor,
    )
    try:
        created = _run_quietly(ensure_topics(settings, progress=_say))
    except TopicsError as exc:
        _fail(str(exc))
    _say(f"created {len(created)} topic(s); all {settings.topic_partitions}-partition topics ok")


@cli.command(short_help="Produce stdin lines to a topic.")
@click.argument("topic")
@click.option("--bootstrap-servers", metavar="HOST:PORT[,...]", help="Kafka bootstrap servers.")
@click.pass_context
def send(ctx: click.Context, topic: str, bootstrap_servers: str | None) -> None:
    """Produce each line of standard input as one message to TOPIC (for trying things out).

    Example: echo '{"event_id":"e1","ts":1764158400,"visitor_id":"v1"}' | streamkpi send pageviews
    """
    settings = _settings(ctx, bootstrap_servers=bootstrap_servers)
    lines = [line.rstrip("\n").encode() for line in sys.stdin if line.strip()]
    try:
        _run_quietly(_send(settings, topic, lines))
    except Exception as exc:  # aiokafka's connection errors have no common base
        _fail(f"cannot send to {topic!r} on {settings.bootstrap_servers}: {exc}")
    _say(f"sent {len(lines)} message(s) to {topic}")


async def _send(settings: Settings, topic: str, values: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer

    from streamkpi.topics import aiokafka_security

    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, **aiokafka_security(settings)
    )
    try:
        await producer.start()
        for value in values:
            await producer.send(topic, value)
    finally:
        # Also after a failed start (a wrong password): an unclosed producer prints a
        # warning after the one-line error (#12).
        await producer.stop()  # flushes what was sent


@cli.group(short_help="Show the effective settings.")
def config() -> None:
    """Inspect the configuration."""


@config.command("show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """Print the effective settings as YAML (secrets masked)."""
    settings = _settings(ctx)
    click.echo(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False), nl=False)


cli.add_command(rules)
cli.add_command(generate)
cli.add_command(demo)
cli.add_command(dashboards)


def main() -> None:
    """Run the CLI."""
    cli(prog_name="streamkpi")
