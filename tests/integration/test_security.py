"""Security on a real broker: SASL PLAIN and SCRAM-SHA-512, SSL with mutual TLS, SASL_SSL.

One broker of this module serves every mode on its own listener (certificates made with
openssl, the SCRAM user written by Kafka's own ``StorageTool format --add-scram``). For each
mode the CLI's ``topics create``, ``send`` and ``generate`` and a worker (count, stop,
restart = restore from the state topic) run over it; a wrong password or certificate gives
one line and exit 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pki import make_pki
from _workers import Samples, WorkerProcess, wait_for

from streamkpi.localkafka import Listener, LocalKafka, free_port

PLAIN_USER, PLAIN_PASSWORD = "alice", "alice-secret"
SCRAM_USER, SCRAM_PASSWORD = "bob", "bob-secret"
PLAIN_JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    f'user_{PLAIN_USER}="{PLAIN_PASSWORD}";'
)
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = make_pki(tmp_path_factory.mktemp("pki"))
    # Kafka's PEM key store: the private key (unencrypted PKCS#8) followed by its certificate.
    (directory / "server-keystore.pem").write_text(
        (directory / "server.key").read_text() + (directory / "server.pem").read_text()
    )
    make_pki(directory / "other")  # a client certificate the broker does not trust
    return directory


@pytest.fixture(scope="module")
def secure_broker(kafka_libs: Path, pki: Path) -> Iterator[LocalKafka]:
    ports: set[int] = set()
    for _ in range(3):
        ports.add(free_port(exclude=ports))
    sasl, tls, sasl_tls = sorted(ports)
    broker = LocalKafka(
        libs_dir=kafka_libs,
        listeners=[
            Listener("SASL", "SASL_PLAINTEXT", sasl),
            Listener("TLS", "SSL", tls),
            Listener("SASLTLS", "SASL_SSL", sasl_tls),
        ],
        properties={
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
            "listener.name.sasl.plain.sasl.jaas.config": PLAIN_JAAS,
            "listener.name.sasl.scram-sha-512.sasl.jaas.config": SCRAM_JAAS,
            "listener.name.sasltls.plain.sasl.jaas.config": PLAIN_JAAS,
            "listener.name.sasltls.scram-sha-512.sasl.jaas.config": SCRAM_JAAS,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(pki / "server-keystore.pem"),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(pki / "ca.pem"),
            "listener.name.tls.ssl.client.auth": "required",  # mutual TLS
        },
        scram_users=[("SCRAM-SHA-512", SCRAM_USER, SCRAM_PASSWORD)],
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def mode_env(broker: LocalKafka, pki: Path, mode: str) -> dict[str, str]:
    """Return the STREAMKPI_ settings of one security mode."""
    k = "STREAMKPI_KAFKA__"
    tls = {f"{k}SSL_CAFILE": str(pki / "ca.pem")}
    client_cert = {
        f"{k}SSL_CERTFILE": str(pki / "client.pem"),
        f"{k}SSL_KEYFILE": str(pki / "client.key"),
    }
    modes = {
        "plain": ("SASL", {f"{k}PROTOCOL": "SASL_PLAINTEXT", f"{k}SASL_MECHANISM": "PLAIN"}),
        "scram": (
            "SASL",
            {f"{k}PROTOCOL": "SASL_PLAINTEXT", f"{k}SASL_MECHANISM": "SCRAM-SHA-512"},
        ),
        "mtls": ("TLS", {f"{k}PROTOCOL": "SSL", **tls, **client_cert}),
        "sasl_ssl": (
            "SASLTLS",
            {f"{k}PROTOCOL": "SASL_SSL", f"{k}SASL_MECHANISM": "SCRAM-SHA-512", **tls},
        ),
    }
    listener, env = modes[mode]
    if "PLAIN" in env.get(f"{k}SASL_MECHANISM", "-"):
        env |= {f"{k}SASL_USERNAME": PLAIN_USER, f"{k}SASL_PASSWORD": PLAIN_PASSWORD}
    elif f"{k}SASL_MECHANISM" in env:
        env |= {f"{k}SASL_USERNAME": SCRAM_USER, f"{k}SASL_PASSWORD": SCRAM_PASSWORD}
    return {"STREAMKPI_BOOTSTRAP_SERVERS": broker.listener_bootstrap(listener), **env}


def base_env(run: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMKPI_")}
    topics = {
        kind: f"{kind.lower()}-{run}"
        for kind in ("PAGEVIEWS", "EMAILS", "ORDERS", "ADSPEND", "SURVEYS", "DLQ", "SNAPSHOTS")
    }
    return env | {
        "STREAMKPI_APP_ID": f"sec-{run}",
        "STREAMKPI_LOG_LEVEL": "warning",
        "STREAMKPI_CHECKPOINT_INTERVAL_S": "0.5",
        **{f"STREAMKPI_TOPICS__{kind}": name for kind, name in topics.items()},
    }


def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamkpi", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("mode", ["plain", "scram", "mtls", "sasl_ssl"])
async def test_cli_and_worker_work_over_each_security_mode(
    secure_broker: LocalKafka, pki: Path, tmp_path: Path, mode: str
) -> None:
    run = uuid.uuid4().hex[:6]
    env = base_env(run) | mode_env(secure_broker, pki, mode)
    env["STREAMKPI_DATA_DIR"] = str(tmp_path / "data")

    created = cli(env, "topics", "create")
    assert created.returncode == 0, created.stderr
    assert "created 8 topic(s)" in created.stderr, created.stderr
    generated = cli(env, "generate", "--rate", "20", "--duration", "2s", "--seed", "3")
    assert generated.returncode == 0, generated.stderr
    now = int(time.time())
    lines = "".join(
        f'{{"event_id":"sec-{run}-{i}","ts":{now},"visitor_id":"v{i}"}}\n' for i in range(5)
    )
    sent = cli(env, "send", f"pageviews-{run}", stdin=lines)
    assert sent.returncode == 0, sent.stderr
    assert "sent 5 message(s)" in sent.stderr

    worker = WorkerProcess(env, tmp_path / "w.log")
    counted: list[float] = []
    for attempt in ("first", "restored"):
        worker.start()
        try:

            def done(attempt: str = attempt) -> bool:
                m = worker.metrics()
                if m is None:
                    return False
                lags = [v for (name, _), v in m.items() if name == "streamkpi_consumer_lag"]
                total = pageviews_24h(m)
                if attempt == "restored":  # nothing new to read: all of it from the state topic
                    return total == counted[0]
                return len(lags) == 5 * 4 and not any(lags) and total >= 5

            await wait_for(
                done, timeout_s=90, what=f"{mode}: {attempt} worker", on_timeout=worker.log_tail
            )
            if attempt == "first":
                counted.append(pageviews_24h(worker.metrics()))
        finally:
            # Over TLS a stop can take ~30 s: asyncio waits up to its ssl_shutdown_timeout
            # (30 s) for the broker's close_notify on each connection Faust closes.
            started = time.monotonic()
            assert worker.stop(timeout_s=90) == 0, worker.log_tail()
            print(f"{mode}: {attempt} worker stopped in {time.monotonic() - started:.1f}s")


def pageviews_24h(m: Samples | None) -> float:
    assert m is not None
    return sum(
        v
        for (name, labels), v in m.items()
        if name == "streamkpi_pageviews" and ("window", "24h") in labels
    )


@pytest.mark.parametrize(
    ("mode", "change"),
    [
        ("scram", {"STREAMKPI_KAFKA__SASL_PASSWORD": "wrong"}),
        ("plain", {"STREAMKPI_KAFKA__SASL_PASSWORD": "wrong"}),
        ("mtls", {"STREAMKPI_KAFKA__SSL_CERTFILE": "other/client.pem"}),
        ("mtls", {"STREAMKPI_KAFKA__SSL_CAFILE": "other/ca.pem"}),
    ],
    ids=["scram-password", "plain-password", "untrusted-client-cert", "untrusted-broker-cert"],
)
def test_wrong_credentials_give_one_line_and_exit_1(
    secure_broker: LocalKafka, pki: Path, mode: str, change: dict[str, str]
) -> None:
    run = uuid.uuid4().hex[:6]
    env = base_env(run) | mode_env(secure_broker, pki, mode)
    for key, value in change.items():
        env[key] = value if value == "wrong" else str(pki / value)
    if "SSL_CERTFILE" in str(change):
        env["STREAMKPI_KAFKA__SSL_KEYFILE"] = str(pki / "other" / "client.key")
    for args in (("topics", "create"), ("send", f"pageviews-{run}"), ("worker",)):
        extra = {"STREAMKPI_WEB_PORT": str(free_port())} if args == ("worker",) else {}
        result = cli(env | extra, *args, stdin='{"event_id":"x"}\n')
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1, (args, result.stderr)
        assert len(lines) == 1, (args, result.stderr)
        assert lines[0].startswith("streamkpi: error: "), lines
        print(f"{mode} {'+'.join(change)} {args[0]}: {lines[0]}")
