"""Fixtures for tests that need a real Kafka broker (started from Maven Central jars)."""

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamkpi.localkafka import LocalKafka, LocalKafkaError, ensure_jars

_HERE = Path(__file__).resolve().parent

# A background job of a non-interactive shell starts with SIGINT ignored, and exec keeps
# an ignored signal ignored: `make test` runs the live-truth test so, and the demo it
# started then ignored the test's Ctrl-C (CI, #11). A handled signal is reset to the
# default in children.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration as ``integration``."""
    # A hook in a sub-directory conftest still sees the whole session's items.
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_libs() -> Path:
    """Return the cached Kafka jars, fetching them once; fail (never skip) without Java/Maven."""
    try:
        return ensure_jars()
    except LocalKafkaError as error:
        problem = str(error)
    # Outside the except block, so the report is this one message, not a chained traceback.
    pytest.fail(f"integration tests need a real Kafka broker: {problem}", pytrace=False)


@pytest.fixture(scope="session")
def kafka_broker(kafka_libs: Path) -> Iterator[LocalKafka]:
    """Start one broker on free ports with a temp data dir for the whole session."""
    broker = LocalKafka(libs_dir=kafka_libs)
    problem = ""
    try:
        broker.start()
    except LocalKafkaError as error:
        problem = str(error)
    if problem:
        broker.stop()
        pytest.fail(f"the local Kafka broker did not start: {problem}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()
