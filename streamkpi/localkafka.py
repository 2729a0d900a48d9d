"""Run a real single-node Apache Kafka 4.x (KRaft) broker from Maven Central jars.

For development, tests and CI on machines without Docker: ``ensure_jars()`` fetches the
broker once with Maven into a cache outside the repo, and ``LocalKafka`` formats a data dir,
starts ``kafka.Kafka`` in a child JVM bound to 127.0.0.1 and waits until it answers a
metadata request. The JVM can never outlive the Python process that started it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import weakref
import xml.etree.ElementTree as ET
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from string import Template
from types import TracebackType
from typing import Any, Self, TypeVar

from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

__all__ = [
    "DEPLOY_DIR",
    "POM_PATH",
    "Listener",
    "LocalKafka",
    "LocalKafkaError",
    "create_topics",
    "default_cache_dir",
    "end_process",
    "ensure_jars",
    "find_java",
    "free_port",
    "kafka_version",
    "new_cluster_id",
    "parse_java_major",
    "render_server_properties",
]

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "kafka"
POM_PATH = DEPLOY_DIR / "pom.xml"
SERVER_PROPERTIES_TEMPLATE = DEPLOY_DIR / "server.properties.template"
LOG4J_CONFIG = DEPLOY_DIR / "log4j2.yaml"

MIN_JAVA_MAJOR = 17  # Kafka 4.x brokers refuse older JVMs (KIP-750).
NODE_ID = 1  # node.id in server.properties.template
_COMPLETE_MARKER = ".streamkpi-complete"
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_LOG_TAIL_LINES = 30

T = TypeVar("T")


class LocalKafkaError(RuntimeError):
    """A local broker could not be fetched, started or stopped."""


def _require_files(*paths: Path) -> None:
    """Raise a clear error when a deploy/kafka file is missing (not a source checkout)."""
    for path in paths:
        if not path.is_file():
            raise LocalKafkaError(
                f"{path} not found: the local broker needs the deploy/kafka files of a "
                "streamkpi source checkout (install it with `pip install -e .`)"
            )


def kafka_version(pom: Path = POM_PATH) -> str:
    """Return the Kafka version pinned by the ``kafka.version`` property of the pom."""
    _require_files(pom)
    root = ET.parse(pom).getroot()  # noqa: S314 - the project's own pom, not untrusted input
    node = root.find("m:properties/m:kafka.version", _POM_NS)
    if node is None or node.text is None or not node.text.strip():
        raise LocalKafkaError(f"{pom} has no <kafka.version> property")
    return node.text.strip()


def default_cache_dir() -> Path:
    """Return ``$STREAMKPI_KAFKA_CACHE`` or ``~/.cache/streamkpi/kafka-<version>``."""
    override = os.environ.get("STREAMKPI_KAFKA_CACHE")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streamkpi" / f"kafka-{kafka_version()}"


def new_cluster_id() -> str:
    """Return a random cluster id formatted like Kafka's ``Uuid.toString()``."""
    while True:
        # Kafka's Uuid.randomUuid(): a random UUID, base64url without padding (22 chars),
        # re-drawn when it starts with "-" so it cannot be mistaken for a command-line flag.
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not text.startswith("-"):
            return text


def parse_java_major(version_output: str) -> int:
    """Return the major version from ``java -version`` output (``1.8`` counts as 8)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        raise LocalKafkaError(f"cannot read the Java version from: {version_output.strip()!r}")
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:
        return int(match.group(2))
    return major


def find_java() -> str:
    """Return the path of a ``java`` of version 17 or newer (``$JAVA_HOME`` first, then PATH)."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    java = str(candidate) if candidate is not None and candidate.is_file() else shutil.which("java")
    if java is None:
        raise LocalKafkaError(
            f"java not found: Apache Kafka 4 needs Java {MIN_JAVA_MAJOR} or newer on PATH "
            "(Debian: apt-get install openjdk-17-jre-headless) or in $JAVA_HOME"
        )
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    major = parse_java_major(result.stderr + result.stdout)
    if major < MIN_JAVA_MAJOR:
        raise LocalKafkaError(
            f"{java} is Java {major}; Apache Kafka 4 needs Java {MIN_JAVA_MAJOR} or newer "
            "(set JAVA_HOME or put a newer java first on PATH)"
        )
    return java


def _print_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _pom_stamp() -> str:
    version = kafka_version()
    digest = hashlib.sha256(POM_PATH.read_bytes()).hexdigest()
    return f"kafka {version} pom-sha256 {digest}\n"


def _is_complete(libs_dir: Path, stamp: str) -> bool:
    marker = libs_dir / _COMPLETE_MARKER
    return marker.is_file() and marker.read_text() == stamp


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def ensure_jars(
    cache_dir: Path | None = None,
    *,
    progress: Callable[[str], None] = _print_progress,
) -> Path:
    """Fetch the broker jars with Maven unless already cached; return the libs dir."""
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    libs = cache / "libs"
    stamp = _pom_stamp()
    if _is_complete(libs, stamp):
        return libs
    find_java()  # Maven runs on Java too; fail with the clearer message first.
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalKafkaError(
            "mvn not found on PATH: it fetches the Apache Kafka jars from Maven Central "
            "(Debian: apt-get install maven)"
        )
    cache.mkdir(parents=True, exist_ok=True)
    # Two processes (a CLI and a test run) may fetch at once: the second waits, then reuses.
    with _exclusive_lock(cache / ".lock"):
        if _is_complete(libs, stamp):
            return libs
        version = kafka_version()
        progress(f"fetching Apache Kafka {version} jars with Maven (first run only)...")
        started = time.monotonic()
        partial = Path(tempfile.mkdtemp(prefix="libs.partial-", dir=cache))
        try:
            command = [
                mvn,
                "--batch-mode",
                "--quiet",
                "-f",
                str(POM_PATH),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={partial}",
                "-DincludeScope=runtime",
            ]
            result = subprocess.run(
                command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
            )
            if result.returncode != 0:
                raise LocalKafkaError(
                    f"Maven failed (exit {result.returncode}) fetching Apache Kafka {version}:\n"
                    f"{_tail(result.stdout + result.stderr)}"
                )
            if not any(partial.glob("kafka_2.13-*.jar")):
                raise LocalKafkaError(f"Maven succeeded but copied no kafka_2.13 jar to {partial}")
            # The marker is written before the rename, so a libs dir without it (or with a
            # stale one after a version bump) is never mistaken for a complete download.
            (partial / _COMPLETE_MARKER).write_text(stamp)
            partial.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from other users
            if libs.exists():
                shutil.rmtree(libs)
            partial.rename(libs)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        jars = sum(1 for _ in libs.glob("*.jar"))
        progress(
            f"fetched {jars} jars into {libs} in {time.monotonic() - started:.1f}s "
            f"(Apache Kafka {version})"
        )
    return libs


def free_port(exclude: Iterable[int] = ()) -> int:
    """Return a TCP port on 127.0.0.1 that is free now (and not in ``exclude``)."""
    excluded = set(exclude)
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in excluded:
            return port


@dataclass(frozen=True)
class Listener:
    """An extra client listener on 127.0.0.1, e.g. ``Listener("SASL", "SASL_PLAINTEXT", port)``."""

    name: str
    protocol: str
    port: int


def render_server_properties(
    *,
    port: int,
    controller_port: int,
    log_dir: Path,
    template: Path = SERVER_PROPERTIES_TEMPLATE,
    listeners: Sequence[Listener] = (),
    properties: Mapping[str, str] | None = None,
) -> str:
    """Return server.properties for one broker+controller node on 127.0.0.1.

    ``listeners`` are added next to the PLAINTEXT one (which stays the inter-broker
    listener); ``properties`` are appended and override the template's (e.g. SSL key
    stores, ``sasl.enabled.mechanisms``, per-listener ``...sasl.jaas.config``).
    """
    text = Template(template.read_text()).substitute(
        port=port, controller_port=controller_port, log_dir=log_dir
    )
    if listeners:
        extra = {
            "listeners": [f"{lst.name}://127.0.0.1:{lst.port}" for lst in listeners],
            "advertised.listeners": [f"{lst.name}://127.0.0.1:{lst.port}" for lst in listeners],
            "listener.security.protocol.map": [f"{lst.name}:{lst.protocol}" for lst in listeners],
        }
        lines = []
        for line in text.splitlines():
            key = line.split("=", 1)[0]
            lines.append(",".join([line, *extra[key]]) if key in extra else line)
        text = "\n".join(lines) + "\n"
    if properties:
        text += "\n# Extra settings of this broker\n"
        text += "".join(f"{key}={value}\n" for key, value in properties.items())
    return text


def _die_with_parent() -> Callable[[], None]:
    """Return a ``preexec_fn`` that makes the child get SIGTERM when this process dies."""
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None

    def preexec() -> None:
        if libc is not None:
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def end_process(proc: subprocess.Popen[bytes], timeout_s: float, *, graceful: bool) -> None:
    """End a JVM started in its own session: SIGTERM, then SIGKILL its process group."""
    # Signals go only to a process not yet reaped: until then its pid (the group id, as it
    # leads its own session) cannot have been reused by an unrelated process.
    if proc.poll() is not None:
        return
    if graceful:
        # Kafka's shutdown hook does a controlled shutdown on SIGTERM.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout_s)
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _run_sync(make_coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())
    # Called from a coroutine (e.g. an async test): use a private loop in a helper thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


async def _port_open(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _answers_metadata(bootstrap_servers: str, port: int, timeout_s: float) -> bool:
    """Return whether the broker on ``port`` lists itself in a metadata response."""
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=max(1, int(timeout_s * 1000))
    )
    try:
        await client.bootstrap()
        return any(broker.port == port for broker in client.cluster.brokers())
    except Exception:  # any failure means "not ready yet"; the caller retries until its deadline
        return False
    finally:
        await client.close()


class LocalKafka:
    """A single-node Apache Kafka 4.x KRaft broker in a child JVM bound to 127.0.0.1."""

    def __init__(
        self,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        data_dir: Path | None = None,
        libs_dir: Path | None = None,
        heap: str = "512m",
        listeners: Sequence[Listener] = (),
        properties: Mapping[str, str] | None = None,
        scram_users: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        """Pick free ports if none are given; a temp data dir is made on start if none is.

        ``listeners`` and ``properties`` extend server.properties (see
        :func:`render_server_properties`); ``scram_users`` are (mechanism, user, password)
        credentials written by ``StorageTool format --add-scram`` when the dir is formatted.
        """
        self.port = port if port is not None else free_port()
        self.controller_port = (
            controller_port if controller_port is not None else free_port(exclude={self.port})
        )
        self.listeners = tuple(listeners)
        self.properties = dict(properties or {})
        self.scram_users = tuple(scram_users)
        self.heap = heap
        # Absolute, as the JVM runs in the data dir and gets these paths on its command line.
        self._libs_dir = libs_dir.resolve() if libs_dir is not None else None
        self._data_dir = data_dir.resolve() if data_dir is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        # Finalizers also run at interpreter exit (JVM first, then the temp dir, as atexit
        # runs them in reverse order), so a forgotten stop() leaves neither behind.
        self._proc_finalizer: weakref.finalize[..., Any] | None = None
        self._dir_finalizer: weakref.finalize[..., Any] | None = None
        self._log_offsets: dict[Path, int] = {}

    @property
    def bootstrap_servers(self) -> str:
        """Return the ``host:port`` that clients bootstrap from."""
        return f"127.0.0.1:{self.port}"

    def listener_bootstrap(self, name: str) -> str:
        """Return the ``host:port`` of the extra listener ``name``."""
        for listener in self.listeners:
            if listener.name == name:
                return f"127.0.0.1:{listener.port}"
        raise LocalKafkaError(f"no listener {name!r} (have {[lst.name for lst in self.listeners]})")

    @property
    def data_dir(self) -> Path:
        """Return the data dir (made on first start when none was given)."""
        if self._data_dir is None:
            raise LocalKafkaError("no data dir yet: a temporary one is made by start()")
        return self._data_dir

    @property
    def log_dir(self) -> Path:
        """Return the broker's ``log.dirs`` (topic data and KRaft metadata)."""
        return self.data_dir / "kafka-logs"

    @property
    def log_path(self) -> Path:
        """Return the broker's log4j log file."""
        return self.data_dir / "broker.log"

    @property
    def stdout_path(self) -> Path:
        """Return the file that receives the JVM's stdout and stderr."""
        return self.data_dir / "stdout.log"

    @property
    def formatted(self) -> bool:
        """Return whether the data dir already holds a formatted KRaft log dir."""
        return self._data_dir is not None and (self.log_dir / "meta.properties").is_file()

    @property
    def pid(self) -> int | None:
        """Return the JVM's pid while it runs."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        """Return whether the JVM is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 60) -> None:
        """Format the data dir if new, launch the JVM and wait until it answers metadata.

        Call it from a long-lived thread (normally the main one): Linux sends the JVM its
        parent-death SIGTERM when the thread that started it exits.
        """
        if self.running:
            raise LocalKafkaError(f"broker already running (pid {self.pid})")
        _require_files(SERVER_PROPERTIES_TEMPLATE, LOG4J_CONFIG)
        java = find_java()
        libs = self._libs_dir if self._libs_dir is not None else ensure_jars()
        self._prepare_data_dir()
        config = self.data_dir / "server.properties"
        config.write_text(
            render_server_properties(
                port=self.port,
                controller_port=self.controller_port,
                log_dir=self.log_dir,
                listeners=self.listeners,
                properties=self.properties,
            )
        )
        if not self.formatted:
            self._format(java, libs, config)
        self._launch(java, libs, config)
        try:
            self.wait_ready(timeout_s)
        except BaseException:
            # Keep the data dir (and its logs) for a post-mortem; stop() or exit removes a temp one.
            self._end(timeout_s=5, graceful=True)
            raise

    def wait_ready(self, timeout_s: float = 60) -> None:
        """Block until the broker answers a metadata request; raise if it dies or times out."""
        _run_sync(lambda: self.wait_ready_async(timeout_s))

    async def wait_ready_async(self, timeout_s: float = 60) -> None:
        """Wait until the broker answers a metadata request; raise if it dies or times out."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._raise_if_exited()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LocalKafkaError(
                    f"Kafka on {self.bootstrap_servers} did not answer a metadata request "
                    f"within {timeout_s:g}s (pid {self.pid}).\n{self._log_tail()}"
                )
            # Probe the socket first: aiokafka logs an ERROR for every refused bootstrap.
            if await _port_open(self.port) and await _answers_metadata(
                self.bootstrap_servers, self.port, timeout_s=min(remaining, 5.0)
            ):
                return
            await asyncio.sleep(0.2)

    def stop(self, timeout_s: float = 30) -> None:
        """Shut the broker down (SIGTERM, SIGKILL after ``timeout_s``); remove a temp data dir."""
        self._end(timeout_s=timeout_s, graceful=True)
        if self._dir_finalizer is not None:
            self._dir_finalizer()
            self._dir_finalizer = None
            self._data_dir = None

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would; the data dir is kept for a restart."""
        self._end(timeout_s=0, graceful=False)

    def __enter__(self) -> Self:
        """Start the broker unless it already runs."""
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the broker."""
        self.stop()

    def _prepare_data_dir(self) -> None:
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="streamkpi-kafka-"))
            self._dir_finalizer = weakref.finalize(
                self, shutil.rmtree, self._data_dir, ignore_errors=True
            )
        self._data_dir.mkdir(parents=True, exist_ok=True)

    def _classpath_and_logging(self, libs: Path) -> list[str]:
        return [
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            f"{libs}/*",  # expanded by java itself, not by a shell
        ]

    def _format(self, java: str, libs: Path, config: Path) -> None:
        command = [
            java,
            *self._classpath_and_logging(libs),
            "kafka.tools.StorageTool",
            "format",
            "--standalone",  # this node is the whole controller quorum (KIP-853)
            "--cluster-id",
            new_cluster_id(),
            "--config",
            str(config),
        ]
        for mechanism, user, password in self.scram_users:
            command += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
        )
        if result.returncode != 0:
            raise LocalKafkaError(
                f"formatting {self.log_dir} failed (exit {result.returncode}):\n"
                f"{_tail(result.stdout + result.stderr)}"
            )

    def _launch(self, java: str, libs: Path, config: Path) -> None:
        command = [
            java,
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            # A broker out of heap is broken; dying makes start() or the test fail visibly.
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            *self._classpath_and_logging(libs),
            "kafka.Kafka",
            str(config),
        ]
        # Error reports quote only what this run logged: the files are appended to by restarts.
        self._log_offsets = {
            path: path.stat().st_size if path.is_file() else 0
            for path in (self.log_path, self.stdout_path)
        }
        # The child keeps its own copy of the descriptor, so ours can be closed at once.
        with self.stdout_path.open("ab") as out:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,  # where a JVM crash file (hs_err_pid*.log) lands
                # Own session: a terminal Ctrl-C reaches the worker, not the broker it uses;
                # the worker stops first and then stops the broker.
                start_new_session=True,
                preexec_fn=_die_with_parent(),  # only prctl and getppid: safe after fork
            )
        self._proc_finalizer = weakref.finalize(self, end_process, self._proc, 10.0, graceful=True)

    def _end(self, *, timeout_s: float, graceful: bool) -> None:
        if self._proc_finalizer is not None:
            self._proc_finalizer.detach()
            self._proc_finalizer = None
        if self._proc is not None:
            end_process(self._proc, timeout_s, graceful=graceful)

    def _raise_if_exited(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise LocalKafkaError(
                f"Kafka exited with code {self._proc.returncode} before it was ready.\n"
                f"{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        """Return this run's ERROR lines and last lines of the broker log and JVM output."""
        parts = []
        for path in (self.log_path, self.stdout_path):
            if not path.is_file():
                continue
            with path.open("rb") as handle:
                handle.seek(self._log_offsets.get(path, 0))
                text = handle.read().decode(errors="replace")
            errors = _error_lines(text)
            if errors:
                parts.append(f"--- errors in {path} ---\n{errors}")
            if text.strip():
                parts.append(f"--- last lines of {path} ---\n{_tail(text)}")
        return "\n".join(parts) or f"(no broker output in {self.data_dir})"


def _error_lines(log_text: str, limit: int = 8) -> str:
    """Return the first ERROR/FATAL log4j lines, each with the exception line under it."""
    lines = log_text.splitlines()
    picked: list[str] = []
    for index, line in enumerate(lines):
        if len(picked) >= limit:
            break
        if "] ERROR " in line or "] FATAL " in line:
            following = lines[index + 1] if index + 1 < len(lines) else ""
            exception = following if following and not following.startswith("[") else ""
            picked.append(f"{line}\n    {exception}" if exception else line)
    return "\n".join(picked)


async def create_topics(
    bootstrap_servers: str,
    topics: Mapping[str, int] | Iterable[str],
    *,
    partitions: int = 1,
    replication_factor: int = 1,
    configs: Mapping[str, str] | None = None,
    timeout_s: float = 30,
) -> list[str]:
    """Create the topics that do not exist yet and wait until all have leaders.

    ``topics`` maps names to partition counts, or lists names that get ``partitions`` each.
    Returns the names that were created now (sorted); existing topics are left as they are.
    """
    if isinstance(topics, str):  # one name, not an iterable of one-letter names
        topics = [topics]
    wanted = dict(topics) if isinstance(topics, Mapping) else dict.fromkeys(topics, partitions)
    deadline = time.monotonic() + timeout_s
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        await admin.start()
        response = await admin.create_topics(
            [
                NewTopic(name, count, replication_factor, topic_configs=dict(configs or {}))
                for name, count in wanted.items()
            ],
            timeout_ms=int(timeout_s * 1000),
        )
        created: list[str] = []
        for entry in response.to_object()["topic_errors"]:
            name, code = str(entry["topic"]), int(entry["error_code"])
            if code == 0:
                created.append(name)
            elif code != TopicAlreadyExistsError.errno:
                error = for_code(code)
                raise LocalKafkaError(
                    f"creating topic {name!r} failed: {error.__name__}: "
                    f"{entry.get('error_message') or error.description}"
                )
        await _wait_for_leaders(admin, set(wanted), deadline)
        return sorted(created)
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: set[str], deadline: float) -> None:
    """Wait until every topic in ``names`` is in metadata with a leader for each partition."""
    while True:
        # describe_topics() without names lists all topics and never auto-creates one.
        ready = {
            str(topic["topic"])
            for topic in await admin.describe_topics()
            if topic["error_code"] == 0
            and topic["partitions"]
            and all(p["error_code"] == 0 and p["leader"] >= 0 for p in topic["partitions"])
        }
        missing = names - ready
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise LocalKafkaError(f"topics without leaders after the timeout: {sorted(missing)}")
        await asyncio.sleep(0.1)
