"""`streamkpi run`, the README's first command: broker + worker up, Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from _workers import free_port, sample, scrape, wait_for

from streamkpi.localkafka import free_port as free_kafka_port


def descendants(pid: int) -> set[int]:
    """Return every live descendant of ``pid`` (from /proc's children lists)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead but still has a pid until reaped.
    status = Path(f"/proc/{pid}/status").read_text()
    return "\nState:\tZ" not in status


async def test_run_starts_broker_and_worker_and_ctrl_c_stops_both(
    kafka_libs: Path, tmp_path: Path
) -> None:
    kafka_port, web_port = free_kafka_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMKPI_")}
    env["STREAMKPI_DATA_DIR"] = str(tmp_path / "state")
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamkpi",
            "run",
            "--kafka-port",
            str(kafka_port),
            "--kafka-dir",
            str(tmp_path / "kafka"),
            "--web-port",
            str(web_port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        # Its own process group, so the test can Ctrl-C it the way a terminal does.
        start_new_session=True,
    )
    log.close()

    def log_tail() -> str:
        return (tmp_path / "run.log").read_text(errors="replace")[-4000:]

    children: set[int] = set()
    try:
        await wait_for(
            lambda: (
                sample(
                    scrape(web_port),
                    "streamkpi_events_total",
                    topic="pageviews",
                    outcome="accepted",
                )
                == 0
            ),
            timeout_s=120,
            what="streamkpi_events_total on the worker started by `streamkpi run`",
            on_timeout=log_tail,
        )
        children = descendants(proc.pid)
        assert len(children) >= 2, f"expected a broker and a worker, got {children}"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        assert proc.wait(timeout=60) == 0, log_tail()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    left = {pid for pid in children if alive(pid)}
    assert not left, f"processes left behind: {left}\n{log_tail()}"


async def test_kafka_start_runs_a_broker_until_ctrl_c(kafka_libs: Path, tmp_path: Path) -> None:
    from streamkpi.localkafka import create_topics

    port = free_kafka_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamkpi",
            "kafka",
            "start",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "kafka"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()  # blocks until the broker is up (or failed)
        while line and "Kafka is up" not in line:
            line = proc.stderr.readline().decode()
        assert f"127.0.0.1:{port}" in line, line
        assert await create_topics(f"127.0.0.1:{port}", ["hello"]) == ["hello"]
        children = descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    assert not {pid for pid in children if alive(pid)}
