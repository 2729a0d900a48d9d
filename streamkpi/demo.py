"""``streamkpi demo``: the whole product on one machine, from nothing, with one command.

Starts a local Kafka broker, creates the topics, starts a worker and the live traffic
generator (``streamkpi generate``), and Prometheus and Alertmanager with the project's
config when they are installed; then shows the main KPIs per campaign in a refreshing
terminal table read from the worker's ``/kpis``. Everything runs in a temporary directory
that is removed at the end. Ctrl-C (or SIGTERM) stops the children in reverse order; each
runs in its own process group with a parent-death signal, so none can outlive the demo.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, Final, NoReturn

import click
import yaml

from streamkpi.alerts.config import load_alert_config, with_pending_time
from streamkpi.alerts.routing import (
    ALERTMANAGER_FILE,
    load_alertmanager_config,
    with_webhook_receivers,
)
from streamkpi.alerts.rules import render_alert_file
from streamkpi.config import ConfigError, Settings, load_settings
from streamkpi.generator.cli import BACKFILL, DURATION, INCIDENT, STEADY
from streamkpi.generator.incidents import Incident, IncidentKind
from streamkpi.kpis.config import EngineConfig
from streamkpi.kpis.spec import Labels
from streamkpi.kpis.values import kpi_values

__all__ = [
    "ALERTMANAGER_BINARIES",
    "EXAMPLE_QUERY",
    "FALLBACK_ALERTMANAGER_CONFIG",
    "INCIDENT_KPIS",
    "AlertDeliveries",
    "KpiRow",
    "campaign_rows",
    "demo",
    "incident_alerts",
    "prometheus_config",
]

REPO: Final = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR: Final = REPO / "deploy" / "prometheus"
# Debian's package installs the binary as prometheus-alertmanager; upstream as alertmanager.
ALERTMANAGER_BINARIES: Final = ("alertmanager", "prometheus-alertmanager")
# Used when deploy/alertmanager/alertmanager.yml is absent: alerts are shown, sent nowhere.
FALLBACK_ALERTMANAGER_CONFIG: Final = {
    "route": {"receiver": "demo", "group_by": ["alertname", "campaign"]},
    "receivers": [{"name": "demo"}],
}
# The query the demo links to in the Prometheus UI: a recording rule of the shipped rules.
EXAMPLE_QUERY: Final = "campaign_channel:streamkpi_conversion_rate:ratio5m"
INSTALL_HINT: Final = "apt-get install prometheus prometheus-alertmanager"
EXIT_USAGE: Final = 2
EXIT_FAILURE: Final = 1


class AlertDeliveries:
    """What Alertmanager delivered to the demo: a webhook receiver on a free loopback port.

    The demo's Alertmanager runs the shipped routes, grouping and inhibition with every
    receiver (pager, chat) pointed here, so the terminal shows which receiver got which
    alert, firing then resolved, as the pager and chat would have.
    """

    def __init__(self) -> None:
        """Prepare an empty record; :meth:`start` serves the webhook."""
        self._lock = threading.Lock()
        self._latest: dict[tuple[str, str], str] = {}
        self._server: ThreadingHTTPServer | None = None

    def record(self, notification: Mapping[str, Any]) -> None:
        """Keep the latest status of each (receiver, alert) of a webhook notification."""
        receiver = str(notification.get("receiver", "?"))
        for alert in notification.get("alerts", []):
            labels = alert.get("labels", {})
            where = ",".join(f"{k}={labels[k]}" for k in ("campaign", "channel") if k in labels)
            name = f"{labels.get('alertname', '?')}{{{where}}}"
            with self._lock:
                self._latest[receiver, name] = str(alert.get("status", "?")).upper()

    def lines(self) -> list[str]:
        """Return ``receiver: STATUS alertname{campaign,channel}`` lines, sorted."""
        with self._lock:
            return sorted(f"{r}: {status} {name}" for (r, name), status in self._latest.items())

    def start(self) -> str:
        """Serve the webhook in a daemon thread; return its URL."""
        deliveries = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                with contextlib.suppress(ValueError):
                    body = json.loads(self.rfile.read(length))
                    if isinstance(body, dict):
                        deliveries.record(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the view shows what arrived."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/alerts"

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why."""


# ---------------------------------------------------------------------------------------
# Pure parts: the Prometheus config, the KPI rows


# The KPI alerts each incident kind moves (README, "Live traffic").
INCIDENT_KPIS: Final[Mapping[IncidentKind, tuple[str, ...]]] = {
    IncidentKind.deliverability_drop: ("deliverability",),
    IncidentKind.conversion_drop: ("conversion_rate", "cart_abandonment_rate", "cpa", "roas"),
    IncidentKind.traffic_stop: ("traffic",),
    IncidentKind.checkout_broken: (
        "cart_abandonment_rate",
        "conversion_rate",
        "revenue",
        "roas",
        "cpa",
    ),
    IncidentKind.landing_broken: ("bounce_rate", "landing_bounce_rate"),
    IncidentKind.ad_overspend: ("cpa", "roas"),
    IncidentKind.nps_drop: ("nps",),
}


def incident_alerts(incidents: Sequence[Incident]) -> tuple[set[str] | None, bool]:
    """Return (KPIs, pipeline?) whose alerts ``--alert-for`` shortens for ``incidents``.

    Every alert when there is no incident; else the KPIs the incidents move, and the
    pipeline's alerts (no events) when traffic stops.
    """
    if not incidents:
        return None, True
    kpis = {kpi for incident in incidents for kpi in INCIDENT_KPIS[incident.kind]}
    return kpis, any(i.kind is IncidentKind.traffic_stop for i in incidents)


def prometheus_config(
    base: Mapping[str, Any],
    *,
    target: str,
    alertmanager: str | None,
    rules_dir: Path = PROMETHEUS_DIR,
) -> dict[str, Any]:
    """Return deploy/prometheus/prometheus.yml (``base``) pointed at the demo's processes.

    The scrape targets become the one worker, relative rule globs become absolute (the
    demo's config lives in a temp dir), and ``alertmanager`` (host:port) receives alerts.
    """
    config = dict(base)
    config["rule_files"] = [
        str(rules_dir / pattern) if not Path(pattern).is_absolute() else pattern
        for pattern in base.get("rule_files", [])
    ]
    jobs = [dict(job) for job in base.get("scrape_configs", [])]
    streamkpi_jobs = [job for job in jobs if job.get("job_name") == "streamkpi"]
    if not streamkpi_jobs:
        jobs.append({"job_name": "streamkpi"})
        streamkpi_jobs = jobs[-1:]
    for job in streamkpi_jobs:
        job.pop("file_sd_configs", None)
        job["static_configs"] = [{"targets": [target]}]
    config["scrape_configs"] = jobs
    if alertmanager is not None:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    else:
        config.pop("alerting", None)
    return config


@dataclass(frozen=True)
class KpiRow:
    """One line of the live table: a campaign's components summed over its channels."""

    campaign: str
    components: dict[str, float]
    kpis: dict[str, float | None]


def campaign_rows(document: Mapping[str, Any]) -> list[KpiRow]:
    """Return one row per campaign of a ``/kpis`` document, busiest first, then ``all``.

    Components are summed over the campaign's channels, then the KPIs divided again
    (never averaged), as the recording rules do.
    """
    sums: dict[str, dict[str, float]] = {}
    for cell in document.get("campaigns", []):
        total = sums.setdefault(str(cell["campaign"]), {})
        for name, value in cell["components"].items():
            total[name] = total.get(name, 0) + value
    rows = [
        KpiRow(name, comps, _kpis(comps))
        for name, comps in sorted(
            sums.items(), key=lambda item: (-item[1].get("sessions", 0), item[0])
        )
    ]
    overall = dict(document.get("overall", {}).get("components", {}))
    rows.append(KpiRow("all", overall, _kpis(overall)))
    return rows


def _kpis(components: Mapping[str, float]) -> dict[str, float | None]:
    exact = {k: v if isinstance(v, int) else Decimal(str(v)) for k, v in components.items()}
    return kpi_values(exact, Labels.campaign_channel)


# ---------------------------------------------------------------------------------------
# Processes


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        # As the servers bind: connections of a demo that just stopped (TIME_WAIT) do not
        # make its ports look taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _killed_with_parent() -> Any:
    """Return a ``preexec_fn`` that SIGKILLs the child when the demo dies.

    SIGKILL, not SIGTERM: a worker whose broker died at the same moment can hang in its
    shutdown, and the demo's state is a temp dir anyway (the worker is crash-safe).
    """
    import ctypes

    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None

    def preexec() -> None:
        if libc is not None:
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the demo died before prctl took effect
            os._exit(1)

    return preexec


@dataclass
class _Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.is_file() else ""
        return "\n".join(text.strip().splitlines()[-lines:])


@dataclass
class _Children:
    """The processes the demo started; stopped in reverse order of start."""

    workdir: Path
    started: list[_Child] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> _Child:
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=self.workdir,
                # Own process group: the terminal's Ctrl-C reaches the demo only, which then
                # stops everything in order (the worker still needs the broker to commit).
                start_new_session=True,
                preexec_fn=_killed_with_parent(),
            )
        child = _Child(name, proc, log)
        self.started.append(child)
        return child

    def stop_all(self, say: Any) -> None:
        from streamkpi.localkafka import end_process

        for child in reversed(self.started):
            if child.proc.poll() is None:
                say(f"stopping {child.name}")
            end_process(child.proc, 30.0, graceful=True)
        self.started.clear()

    def dead(self) -> _Child | None:
        return next((c for c in self.started if c.proc.poll() is not None), None)


def _http(url: str, timeout_s: float = 3.0) -> bytes | None:
    try:
        # Only the demo's own http://127.0.0.1 URLs come here.
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            body: bytes = response.read()
            return body
    except (OSError, urllib.error.URLError):
        return None


def _wait_http(url: str, child: _Child, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while _http(url) is None:
        if child.proc.poll() is not None:
            raise DemoError(f"{child.name} exited with {child.proc.returncode}:\n{child.tail()}")
        if time.monotonic() > deadline:
            raise DemoError(
                f"{child.name} not ready at {url} after {timeout_s:g}s:\n{child.tail()}"
            )
        time.sleep(0.25)


# ---------------------------------------------------------------------------------------
# The command


@dataclass(frozen=True)
class _Ports:
    kafka: int
    web: int
    prometheus: int
    alertmanager: int


@click.command(
    short_help="Run everything: Kafka, worker, live traffic, Prometheus, a live KPI view.",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Example: streamkpi demo --incident deliverability-drop:campaign=spring_sale:"
    "at=+2m:for=10m (see `streamkpi generate --help` for the incident syntax).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True, max=1_000_000),
    default=200.0,
    show_default=True,
    help="Generated events per second.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Generator seed.")
@click.option(
    "--incident",
    "incidents",
    type=INCIDENT,
    multiple=True,
    help="Inject an incident into the traffic (repeatable).",
)
@click.option(
    "--headless",
    is_flag=True,
    help="No live table: print one KPI line per refresh (for scripts and tests).",
)
@click.option("--duration", type=DURATION, help="Stop by itself after this long, e.g. 5m.")
@click.option(
    "--backfill",
    type=BACKFILL,
    default=STEADY,
    show_default=True,
    help="History the generator produces first, in bulk (see `streamkpi generate --help`); "
    "'steady' (2h6m) puts every KPI of the 5m and 1h windows at its steady state before "
    "the table shows (about 1 min of warm-up at --rate 50, 6 at 200, on 2 cores).",
)
@click.option("--refresh", type=DURATION, default="2s", show_default=True, help="Refresh interval.")
@click.option("--kafka-port", type=int, default=9092, show_default=True, help="Broker port.")
@click.option("--web-port", type=int, default=6066, show_default=True, help="Worker web port.")
@click.option("--prometheus-port", type=int, default=9090, show_default=True)
@click.option("--alertmanager-port", type=int, default=9093, show_default=True)
@click.option(
    "--prometheus/--no-prometheus",
    "with_prometheus",
    default=True,
    show_default=True,
    help="Start Prometheus and Alertmanager when installed.",
)
@click.option(
    "--alert-for",
    type=DURATION,
    help="Fire the alerts the --incident options aim at (all alerts without one) after a "
    "breach lasting this long (e.g. 1m) instead of their configured `for` (10m-1h): to "
    "watch an injected incident page within minutes.",
)
@click.pass_context
def demo(
    ctx: click.Context,
    rate: float,
    seed: int,
    incidents: tuple[Incident, ...],
    headless: bool,
    duration: float | None,
    backfill: float,
    refresh: float,
    kafka_port: int,
    web_port: int,
    prometheus_port: int,
    alertmanager_port: int,
    with_prometheus: bool,
    alert_for: float | None,
) -> None:
    """Run the product end to end on this machine and show its KPIs live.

    Starts a local Kafka broker (Apache Kafka jars fetched with Maven on first use; needs
    Java >= 17 and mvn), creates the topics, starts a worker and the live traffic
    generator, and Prometheus with the project's rules and Alertmanager when they are
    installed. Then shows the main KPIs per campaign over the last 5 minutes, refreshed
    from the worker's /kpis. Everything lives in a temporary directory, removed at the
    end; Ctrl-C stops every process.
    """
    if not headless and not sys.stdout.isatty():
        # No terminal (`make demo | tee log`): the live table would print nothing (#14).
        _say("stdout is not a terminal: one KPI line per refresh (as --headless)")
        headless = True
    ports = _Ports(kafka_port, web_port, prometheus_port, alertmanager_port)
    for name, port in vars(ports).items():
        if not 1 <= port <= 65535:
            raise click.BadParameter(f"{port} is not a TCP port", param_hint=f"--{name}-port")
    root = ctx.find_root()
    config_file: Path | None = root.obj.get("config_file") if root.obj else None
    try:
        settings = load_settings(
            config_file,
            bootstrap_servers=f"127.0.0.1:{kafka_port}",
            web_port=web_port,
            web_host="127.0.0.1",
        )
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)
    code = _Demo(
        settings=settings,
        config_file=config_file,
        ports=ports,
        rate=rate,
        seed=seed,
        incidents=incidents,
        headless=headless,
        duration_s=duration,
        backfill_s=backfill,
        refresh_s=refresh,
        with_prometheus=with_prometheus,
        alert_for_s=alert_for,
    ).run()
    sys.exit(code)


def _alertmanager_binary() -> str | None:
    return next((path for name in ALERTMANAGER_BINARIES if (path := shutil.which(name))), None)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"streamkpi: error: {message}", err=True)
    sys.exit(code)


def _say(message: str) -> None:
    # A closed pipe (`make demo 2>&1 | tee log`, tee stopped by the same Ctrl-C) must not
    # abort the shutdown: the temp dir would be left behind (#14).
    with contextlib.suppress(OSError):
        click.echo(f"demo: {message}", err=True)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@dataclass
class _Demo:
    settings: Settings
    config_file: Path | None
    ports: _Ports
    rate: float
    seed: int
    incidents: tuple[Incident, ...]
    headless: bool
    duration_s: float | None
    backfill_s: float
    refresh_s: float
    with_prometheus: bool
    alert_for_s: float | None = None
    prometheus_url: str | None = None
    alertmanager_url: str | None = None
    deliveries: AlertDeliveries = field(default_factory=AlertDeliveries)

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.web}"

    def run(self) -> int:
        """Start everything, show the KPIs until Ctrl-C or --duration, stop everything."""
        busy = [p for p in vars(self.ports).values() if not _port_free(p)]
        if busy:
            _say(
                f"port(s) {', '.join(map(str, busy))} in use on 127.0.0.1 (another demo, "
                "`make run`?): stop it or pick others with --kafka-port, --web-port, "
                "--prometheus-port, --alertmanager-port"
            )
            return EXIT_FAILURE
        # SIGTERM (a service manager, a test) stops the demo the way Ctrl-C does.
        signal.signal(signal.SIGTERM, _raise_interrupt)
        workdir = Path(tempfile.mkdtemp(prefix="streamkpi-demo-"))
        children = _Children(workdir)
        broker: Any = None
        started_s = time.monotonic()
        try:
            broker = self._start_kafka(workdir)
            self._start_worker_and_generator(children, workdir)
            if self.with_prometheus:
                self._start_monitoring(children, workdir)
            self._print_where_to_look(workdir)
            return self._watch(children, started_s)
        except KeyboardInterrupt:
            _say("stopping (Ctrl-C)")
            return 0
        except DemoError as exc:
            _say(f"error: {exc}")
            return EXIT_FAILURE
        finally:
            with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: keep stopping
                children.stop_all(_say)
                self.deliveries.stop()
            try:
                with contextlib.suppress(KeyboardInterrupt):
                    if broker is not None:
                        _say("stopping Kafka")
                        broker.stop()
            finally:
                # Whatever interrupted the stopping, the temp dir goes (#14).
                shutil.rmtree(workdir, ignore_errors=True)
            _say("stopped; nothing left running")

    def _start_kafka(self, workdir: Path) -> Any:
        from streamkpi.localkafka import LocalKafka, LocalKafkaError, ensure_jars
        from streamkpi.topics import TopicsError, ensure_topics

        try:
            libs = ensure_jars(progress=_say)
            broker = LocalKafka(port=self.ports.kafka, data_dir=workdir / "kafka", libs_dir=libs)
            _say(f"starting Kafka on 127.0.0.1:{self.ports.kafka}")
            broker.start()
        except LocalKafkaError as exc:
            raise DemoError(str(exc)) from None
        import asyncio

        try:
            asyncio.run(ensure_topics(self.settings, progress=_say))
        except TopicsError as exc:
            broker.stop()
            raise DemoError(str(exc)) from None
        return broker

    def _start_worker_and_generator(self, children: _Children, workdir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMKPI_")}
        env |= {
            "STREAMKPI_BOOTSTRAP_SERVERS": self.settings.bootstrap_servers,
            "STREAMKPI_WEB_PORT": str(self.ports.web),
            "STREAMKPI_WEB_HOST": "127.0.0.1",
            "STREAMKPI_DATA_DIR": str(workdir / "worker"),
        }
        if self.with_prometheus and _alertmanager_binary() is not None:
            # The live page lists the alerts Alertmanager holds (it starts a little later:
            # until then the page says it does not answer).
            env["STREAMKPI_WEB_VIEW__ALERTMANAGER_URL"] = (
                f"http://127.0.0.1:{self.ports.alertmanager}"
            )
        base = [sys.executable, "-m", "streamkpi"]
        if self.config_file is not None:
            base += ["--config", str(self.config_file.resolve())]
        argv = [
            *base,
            "generate",
            "--rate",
            f"{self.rate:g}",
            "--seed",
            str(self.seed),
            "--no-create-topics",
            # A warm start (#11): the steady-state history (the longest visit -> purchase
            # delay + the 1h alert window) first, in bulk and in event-time order, so ROAS,
            # CPA, revenue and abandonment are at their steady state when the table shows.
            "--backfill",
            f"{self.backfill_s:g}s",
            "--progress-every",
            "5s",
        ]
        for incident in self.incidents:
            argv += ["--incident", incident.describe()]
        # The generator starts first: the worker then reads the backfill from the topics'
        # start, in order. A worker started first and idle for idle_after_s would have
        # moved its watermarks to the clock, making the older backfill late.
        generator = children.start("generator", argv, env)
        _say(
            f"starting the traffic generator ({self.rate:g} events/s, "
            f"{self.backfill_s / 60:g} min backfill)"
        )
        worker = children.start("worker", [*base, "worker", "--no-create-topics"], env)
        _say(f"starting the worker (live page {self.web_url}/ui)")
        _wait_http(f"{self.web_url}/kpis", worker, timeout_s=120)
        self._wait_caught_up(children, generator)

    def _wait_caught_up(self, children: _Children, generator: _Child) -> None:
        """Wait until the generator is live and the worker has read the backfill.

        Caught up: every pageviews partition's watermark is within allowed_lateness_s + 60 s
        of the clock (its newest event is at most a minute old).
        """
        limit_s = self.settings.allowed_lateness_s + 60
        next_say_s = time.monotonic() + 5
        while True:
            dead = children.dead()
            if dead is not None:
                raise DemoError(f"{dead.name} exited with {dead.proc.returncode}:\n{dead.tail()}")
            live = "backfill done" in generator.tail(50)
            delays = _watermark_delays(_http(f"{self.web_url}/metrics"))
            if live and delays and max(delays) <= limit_s:
                return
            if time.monotonic() >= next_say_s:
                behind = f"{max(delays) / 60:.0f} min behind" if delays else "starting"
                lines = [line for line in generator.tail(5).splitlines() if "backfill" in line]
                progress = lines[-1].removeprefix("generate: ") if lines else "starting"
                _say(f"warming up: generator {progress}; worker {behind}")
                next_say_s = time.monotonic() + 5
            time.sleep(0.5)

    def _start_monitoring(self, children: _Children, workdir: Path) -> None:
        prometheus = shutil.which("prometheus")
        alertmanager = _alertmanager_binary()
        if alertmanager is not None:
            self.alertmanager_url = self._start_alertmanager(children, workdir, alertmanager)
        if prometheus is not None:
            self.prometheus_url = self._start_prometheus(children, workdir, prometheus)
        missing = [
            name
            for name, path in (("prometheus", prometheus), ("alertmanager", alertmanager))
            if path is None
        ]
        if missing:
            _say(f"{' and '.join(missing)} not installed: no alerting ({INSTALL_HINT})")

    def _start_alertmanager(self, children: _Children, workdir: Path, binary: str) -> str:
        config = workdir / "alertmanager.yml"
        if ALERTMANAGER_FILE.is_file():
            # The shipped routes and inhibition; the pager and chat receivers deliver to the
            # demo (they would need secrets), with groups sent after 10 s, not 30 s.
            webhook = self.deliveries.start()
            shipped = with_webhook_receivers(
                load_alertmanager_config(ALERTMANAGER_FILE), webhook, group_wait="10s"
            )
            config.write_text(yaml.safe_dump(shipped, sort_keys=False))
        else:
            _say(f"{ALERTMANAGER_FILE} not found: Alertmanager shows alerts, sends none")
            config.write_text(yaml.safe_dump(FALLBACK_ALERTMANAGER_CONFIG))
        address = f"127.0.0.1:{self.ports.alertmanager}"
        child = children.start(
            "alertmanager",
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={workdir / 'alertmanager'}",
                f"--web.listen-address={address}",
                "--cluster.listen-address=",  # no HA gossip port: one instance
            ],
        )
        _say(f"starting Alertmanager on {address}")
        url = f"http://{address}"
        _wait_http(f"{url}/-/ready", child, timeout_s=60)
        return url

    def _start_prometheus(self, children: _Children, workdir: Path, binary: str) -> str:
        base = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
        am = self.alertmanager_url.removeprefix("http://") if self.alertmanager_url else None
        config = prometheus_config(base, target=f"127.0.0.1:{self.ports.web}", alertmanager=am)
        if self.alert_for_s is not None:
            # The shipped alerts, those the incidents aim at with a shorter `for`, rendered
            # for this run (the others keep their configured `for`).
            kpis, pipeline = incident_alerts(self.incidents)
            alerts = with_pending_time(
                load_alert_config(), f"{self.alert_for_s:g}s", kpis=kpis, pipeline=pipeline
            )
            (workdir / "alerts").mkdir()
            (workdir / "alerts" / "streamkpi-alerts.yml").write_text(
                render_alert_file(
                    alerts,
                    f"the shipped alert config, for: {self.alert_for_s:g}s",
                    EngineConfig.from_settings(self.settings),
                )
            )
            config["rule_files"] = [
                p for p in config["rule_files"] if Path(p).parent.name != "alerts"
            ] + [str(workdir / "alerts" / "*.yml")]
        path = workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        address = f"127.0.0.1:{self.ports.prometheus}"
        child = children.start(
            "prometheus",
            [
                binary,
                f"--config.file={path}",
                f"--storage.tsdb.path={workdir / 'prometheus'}",
                f"--web.listen-address={address}",
            ],
        )
        _say(f"starting Prometheus on {address}")
        url = f"http://{address}"
        _wait_http(f"{url}/-/ready", child, timeout_s=60)
        return url

    def _print_where_to_look(self, workdir: Path) -> None:
        lines = [
            "streamkpi demo is running. Where to look:",
            f"  live page     {self.web_url}/ui   (KPIs, trends, alerts; open it in a browser)",
            f"  metrics       {self.web_url}/metrics",
            f"  KPIs (JSON)   {self.web_url}/kpis?window=5m   (also 1h, 24h; &campaign=...)",
        ]
        if self.prometheus_url:
            query = urllib.parse.quote(EXAMPLE_QUERY)
            lines += [
                f"  Prometheus    {self.prometheus_url}/graph?g0.expr={query}",
                f"  alerts        {self.prometheus_url}/alerts",
            ]
        if self.alertmanager_url:
            lines.append(f"  Alertmanager  {self.alertmanager_url}")
        lines += [
            f"  logs          {workdir}/*.log (removed at the end)",
            "  Ctrl-C stops everything.",
        ]
        click.echo("\n".join(lines), err=True)

    def _watch(self, children: _Children, started_s: float) -> int:
        deadline = None if self.duration_s is None else time.monotonic() + self.duration_s
        generator_started_s = time.time()
        first_kpi_s: float | None = None
        view = _View(self, generator_started_s)
        with view.live() as live:
            while deadline is None or time.monotonic() < deadline:
                dead = children.dead()
                if dead is not None:
                    raise DemoError(
                        f"{dead.name} exited with {dead.proc.returncode}:\n{dead.tail()}"
                    )
                document = _json(_http(f"{self.web_url}/kpis?window=5m"))
                if first_kpi_s is None and document and _sessions(document) > 0:
                    first_kpi_s = time.monotonic() - started_s
                    _say(f"first KPIs {first_kpi_s:.1f}s after the start")
                live(view.render(document))
                time.sleep(self.refresh_s)
        _say(f"--duration {self.duration_s:g}s reached")
        return 0


def _watermark_delays(body: bytes | None) -> list[float]:
    """Return the worker's pageviews watermark delays (s) from a /metrics page."""
    if body is None:
        return []
    from prometheus_client.parser import text_string_to_metric_families

    delays = []
    with contextlib.suppress(ValueError):
        for family in text_string_to_metric_families(body.decode(errors="replace")):
            if family.name == "streamkpi_watermark_delay_seconds":
                delays += [s.value for s in family.samples if s.labels.get("topic") == "pageviews"]
    return delays


def _json(body: bytes | None) -> dict[str, Any] | None:
    if body is None:
        return None
    with contextlib.suppress(ValueError):
        value = json.loads(body)
        if isinstance(value, dict):
            return value
    return None


def _sessions(document: Mapping[str, Any]) -> float:
    return float(document.get("overall", {}).get("components", {}).get("sessions", 0))


# ---------------------------------------------------------------------------------------
# The view


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _plain(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _multiple(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}x"


_COLUMNS: Final = (
    ("sessions", "sessions", lambda v: "-" if v is None else f"{v:,.0f}"),
    ("conversion_rate", "conv.", _ratio),
    ("bounce_rate", "bounce", _ratio),
    ("deliverability", "deliver.", _ratio),
    ("open_rate", "open", _ratio),
    ("click_rate", "click", _ratio),
    ("cart_abandonment_rate", "cart aband.", _ratio),
    ("average_order_value", "AOV", _plain),
    ("revenue", "revenue", _money),
    ("roas", "ROAS", _multiple),
    ("nps", "NPS", lambda v: "-" if v is None else f"{v:+.0f}"),
)


class _View:
    """The refreshing table (rich) or, headless, one plain line per refresh."""

    def __init__(self, demo: _Demo, generator_started_s: float) -> None:
        self.demo = demo
        self.generator_started_s = generator_started_s

    @contextlib.contextmanager
    def live(self) -> Iterator[Any]:
        if self.demo.headless:
            yield lambda text: click.echo(text) if text else None
            return
        from rich.console import Console
        from rich.live import Live

        console = Console(stderr=False)
        with Live(console=console, auto_refresh=False, screen=False) as live:
            yield lambda renderable: live.update(renderable, refresh=True)

    def _alerts(self) -> list[str]:
        if self.demo.prometheus_url is None:
            return []
        document = _json(_http(f"{self.demo.prometheus_url}/api/v1/alerts"))
        if not document:
            return []
        out = []
        for alert in document.get("data", {}).get("alerts", []):
            labels = alert.get("labels", {})
            where = ",".join(f"{k}={labels[k]}" for k in ("campaign", "channel") if k in labels)
            out.append(
                f"{alert.get('state', '?').upper()} {labels.get('alertname', '?')}{{{where}}}"
            )
        return sorted(out)

    def _incidents(self) -> list[str]:
        elapsed_s = time.time() - self.generator_started_s
        return [
            f"{i.describe()} [{'ACTIVE' if i.active(elapsed_s) else 'not active'}]"
            for i in self.demo.incidents
        ]

    def render(self, document: dict[str, Any] | None) -> Any:
        rows = campaign_rows(document) if document else []
        alerts = self._alerts()
        incidents = self._incidents()
        if self.demo.headless:
            return _headless_line(rows, alerts, incidents, self.demo.deliveries.lines())
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        now = datetime.now(UTC).strftime("%H:%M:%S UTC")
        table = Table(
            title=f"streamkpi demo - KPIs per campaign, last 5 minutes (event time) - {now}",
            caption=f"from {self.demo.web_url}/kpis?window=5m - Ctrl-C stops everything",
        )
        table.add_column("campaign", style="bold")
        for _, header, _fmt in _COLUMNS:
            table.add_column(header, justify="right")
        for index, row in enumerate(rows):
            values = [fmt(_value(row, key)) for key, _, fmt in _COLUMNS]
            table.add_row(row.campaign, *values, end_section=index == len(rows) - 2)
        parts: list[Any] = [table]
        if not rows:
            parts.append(Text("waiting for the worker's first KPIs...", style="yellow"))
        for incident in incidents:
            parts.append(Text(f"incident: {incident}", style="magenta"))
        if self.demo.prometheus_url:
            style = "bold red" if any(a.startswith("FIRING") for a in alerts) else "green"
            parts.append(Text("alerts: " + ("; ".join(alerts) or "none"), style=style))
        if self.demo.alertmanager_url:
            delivered = self.demo.deliveries.lines()
            parts.append(
                Text("delivered by Alertmanager: " + ("; ".join(delivered) or "nothing yet"))
            )
        return Group(*parts)


def _value(row: KpiRow, key: str) -> float | None:
    if key in row.kpis:
        return row.kpis[key]
    return row.components.get(key)


def _headless_line(
    rows: list[KpiRow], alerts: list[str], incidents: list[str], delivered: list[str]
) -> str:
    if not rows:
        return "kpis: waiting for the worker"
    overall = rows[-1]
    parts = [
        f"{key}={fmt(_value(overall, key))}"
        for key, _, fmt in _COLUMNS
        if key in ("sessions", "conversion_rate", "bounce_rate", "deliverability", "revenue")
    ]
    line = f"kpis 5m all: {' '.join(parts)} campaigns={len(rows) - 1}"
    if alerts:
        line += f" alerts: {'; '.join(alerts)}"
    if incidents:
        line += f" incidents: {'; '.join(incidents)}"
    if delivered:
        line += f" delivered: {'; '.join(delivered)}"
    return line
