"""Run real streamkpi worker processes against the test broker, and read what they export."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkerProcess:
    """One `streamkpi worker` subprocess with its own env, web port and log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.web_port = free_port()
        self.env = {**os.environ, **env, "STREAMKPI_WEB_PORT": str(self.web_port)}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamkpi", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"worker did not stop in {timeout_s}s:\n{self.log_tail()}"
            ) from None

    def metrics(self) -> Samples | None:
        """Return every sample of this worker's /metrics, or None while it is starting."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
        return scrape(self.web_port)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def http_json(url: str) -> Any:
    """GET ``url`` and decode its JSON body."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        return json.loads(response.read())


def scrape(web_port: int) -> Samples | None:
    """Return every sample of /metrics on ``web_port`` keyed by (name, sorted labels)."""
    try:
        url = f"http://127.0.0.1:{web_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=")
            text = response.read().decode()
    except OSError:
        return None
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def sample(
    samples: Samples | None,
    name: str,
    **labels: str,
) -> float | None:
    if samples is None:
        return None
    return samples.get((name, tuple(sorted(labels.items()))))


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a test's process group if it still runs: Ctrl-C, then SIGKILL after 60 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def wait_for(
    condition: Callable[[], Awaitable[bool]] | Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    on_timeout: Callable[[], str] = lambda: "",
) -> None:
    """Poll ``condition`` until true; fail with ``what`` (and ``on_timeout()``) after timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}\n{on_timeout()}")
        await asyncio.sleep(0.25)


async def read_topic(
    bootstrap: str, topic: str, partitions: int, expected: int, timeout_s: float = 30.0
) -> list[tuple[bytes, bytes, dict[str, bytes]]]:
    """Read the committed records of ``topic`` and check there are exactly ``expected``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",  # dead letters are written in transactions
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[tuple[bytes, bytes, dict[str, bytes]]] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                out.extend((m.key, m.value, dict(m.headers)) for m in messages)
        # Everything committed so far has been read: nothing beyond the expected records.
        end = await consumer.end_offsets(tps)
        for tp in tps:
            while await consumer.position(tp) < end[tp]:
                extra = await consumer.getmany(tp, timeout_ms=500)
                out.extend((m.key, m.value, dict(m.headers)) for m in extra.get(tp, []))
        assert len(out) == expected, f"{topic} holds {len(out)} committed records, not {expected}"
        return out
    finally:
        await consumer.stop()


async def read_all(
    bootstrap: str, topic: str, partitions: int
) -> list[tuple[bytes | None, bytes | None]]:
    """Return every committed (key, value) of ``topic`` up to its current end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: list[tuple[bytes | None, bytes | None]] = []
        for tp in tps:
            while await consumer.position(tp) < end[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                out.extend((m.key, m.value) for m in batch.get(tp, []))
        return out
    finally:
        await consumer.stop()
