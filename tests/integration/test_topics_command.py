"""`streamkpi topics create` against the real local broker: partitions, replicas, errors."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from aiokafka.admin import AIOKafkaAdminClient

from streamkpi.config import Settings
from streamkpi.localkafka import LocalKafka, create_topics, free_port
from streamkpi.topics import source_topics, state_topic_name


def _env(bootstrap: str, run: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMKPI_")}
    names = {
        "PAGEVIEWS": f"pv-{run}",
        "EMAILS": f"em-{run}",
        "ORDERS": f"or-{run}",
        "ADSPEND": f"ad-{run}",
        "SURVEYS": f"su-{run}",
        "DLQ": f"dlq-{run}",
        "SNAPSHOTS": f"snap-{run}",
    }
    return env | {
        "STREAMKPI_BOOTSTRAP_SERVERS": bootstrap,
        "STREAMKPI_APP_ID": f"topics-{run}",
        **{f"STREAMKPI_TOPICS__{key}": value for key, value in names.items()},
    }


def _create(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamkpi", "topics", "create", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _describe(bootstrap: str, names: list[str]) -> dict[str, tuple[int, set[int]]]:
    """Return topic -> (partitions, replica counts of its partitions) for those that exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        present = [name for name in names if name in existing]
        if not present:
            return {}
        return {
            info["topic"]: (
                len(info["partitions"]),
                {len(p["replicas"]) for p in info["partitions"]},
            )
            for info in await admin.describe_topics(present)
        }
    finally:
        await admin.close()


async def test_topics_create_refuses_more_replicas_than_brokers_then_creates_them(
    kafka_broker: LocalKafka,
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    run = uuid.uuid4().hex[:8]
    env = _env(bootstrap, run)
    settings = Settings(bootstrap_servers=bootstrap, app_id=f"topics-{run}")
    names = [
        env[f"STREAMKPI_TOPICS__{key}"]
        for key in ("PAGEVIEWS", "EMAILS", "ORDERS", "ADSPEND", "SURVEYS", "DLQ", "SNAPSHOTS")
    ]
    names.append(state_topic_name(settings))
    assert len(source_topics(settings)) + 1 == len(names)

    # One broker: two replicas cannot be placed. A clear error, exit 1, nothing created.
    refused = _create(env, "--replication-factor", "2")
    assert refused.returncode == 1, refused.stderr
    assert "replication factor 2" in refused.stderr
    assert "fewer brokers" in refused.stderr
    assert await _describe(bootstrap, names) == {}

    created = _create(env)
    assert created.returncode == 0, created.stderr
    assert "replication factor 1" in created.stderr
    assert await _describe(bootstrap, names) == dict.fromkeys(names, (4, {1}))
    # Idempotent: a second run creates nothing and checks the partition counts.
    again = _create(env)
    assert again.returncode == 0, again.stderr
    assert "created 0 topic(s)" in again.stderr


async def test_a_mismatch_is_found_before_any_topic_is_created_and_without_create(
    kafka_broker: LocalKafka,
) -> None:
    # Regression (#12): `topics create` created the missing topics before it failed on the
    # mismatch, and `worker --no-create-topics` skipped the partition check altogether.
    bootstrap = kafka_broker.bootstrap_servers
    run = uuid.uuid4().hex[:8]
    env = _env(bootstrap, run)
    pageviews = env["STREAMKPI_TOPICS__PAGEVIEWS"]
    await create_topics(bootstrap, [pageviews], partitions=2)
    settings = Settings(bootstrap_servers=bootstrap, app_id=f"topics-{run}")
    others = [
        env[f"STREAMKPI_TOPICS__{key}"]
        for key in ("EMAILS", "ORDERS", "ADSPEND", "SURVEYS", "DLQ", "SNAPSHOTS")
    ] + [state_topic_name(settings)]
    message = f"topic {pageviews!r} has 2 partitions but topic_partitions is 4"

    refused = _create(env)
    assert refused.returncode == 1, refused.stderr
    assert message in refused.stderr
    assert await _describe(bootstrap, others) == {}, "topics were created before the check"

    worker = subprocess.run(
        [sys.executable, "-m", "streamkpi", "worker", "--no-create-topics"],
        env=env | {"STREAMKPI_WEB_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=60,  # a worker that starts counting would run until this expires
        check=False,
    )
    assert worker.returncode == 1, worker.stderr
    assert message in worker.stderr
    assert "Traceback" not in worker.stderr
    assert await _describe(bootstrap, others) == {}


async def test_a_dlq_topic_with_a_small_max_message_bytes_is_refused_with_the_fix(
    kafka_broker: LocalKafka,
) -> None:
    # Read, not assumed (#12): a checkpoint batch of 512 KiB into a DLQ topic that takes
    # 100 kB would be refused at every checkpoint (the worker exits, restarts, exits...).
    bootstrap = kafka_broker.bootstrap_servers
    run = uuid.uuid4().hex[:8]
    env = _env(bootstrap, run)
    dlq = env["STREAMKPI_TOPICS__DLQ"]
    await create_topics(bootstrap, [dlq], partitions=4, configs={"max.message.bytes": "100000"})
    refused = _create(env)
    assert refused.returncode == 1, refused.stderr
    assert f"topic {dlq!r} has max.message.bytes=100000" in refused.stderr
    assert f"--entity-name {dlq} --add-config max.message.bytes=525312" in refused.stderr
    assert "Traceback" not in refused.stderr
    # The broker's default (1 MiB) passes: every other topic was created with it.
    assert _create(env | {"STREAMKPI_TOPICS__DLQ": f"dlq2-{run}"}).returncode == 0
