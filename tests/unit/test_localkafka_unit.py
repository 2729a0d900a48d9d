"""Pure parts of streamkpi.localkafka: no JVM, no Maven, no broker."""

import base64
import re
from pathlib import Path

import pytest

from streamkpi import localkafka
from streamkpi.localkafka import (
    POM_PATH,
    LocalKafkaError,
    default_cache_dir,
    ensure_jars,
    free_port,
    kafka_version,
    new_cluster_id,
    parse_java_major,
    render_server_properties,
)


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_cluster_id_is_22_chars_of_base64url_decoding_to_16_bytes() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cluster_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id)
        assert not cluster_id.startswith("-")  # Kafka re-draws these: they look like flags
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_server_properties_bind_both_listeners_to_loopback_with_the_given_ports() -> None:
    props = _properties(
        render_server_properties(
            port=19092, controller_port=19093, log_dir=Path("/data/kafka/kafka-logs")
        )
    )

    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert props["log.dirs"] == "/data/kafka/kafka-logs"
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == str(localkafka.NODE_ID)


def test_server_properties_use_replication_factor_1_everywhere() -> None:
    props = _properties(render_server_properties(port=1, controller_port=2, log_dir=Path("/x")))

    factors = {key: value for key, value in props.items() if "replication.factor" in key}
    assert set(factors.values()) == {"1"}
    assert "offsets.topic.replication.factor" in factors
    assert "transaction.state.log.replication.factor" in factors
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert "${" not in "".join(props.values())


def test_kafka_version_is_read_from_the_pom_property() -> None:
    version = kafka_version()

    assert re.fullmatch(r"4\.\d+\.\d+", version)
    assert f"<kafka.version>{version}</kafka.version>" in POM_PATH.read_text()


def test_kafka_version_of_a_pom_without_the_property_is_an_error(tmp_path: Path) -> None:
    pom = tmp_path / "pom.xml"
    pom.write_text('<project xmlns="http://maven.apache.org/POM/4.0.0"><properties/></project>')

    with pytest.raises(LocalKafkaError, match=r"<kafka\.version>"):
        kafka_version(pom)


def test_kafka_version_without_the_deploy_files_says_to_use_a_checkout(tmp_path: Path) -> None:
    with pytest.raises(LocalKafkaError, match="source checkout"):
        kafka_version(tmp_path / "pom.xml")


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),  # Debian 12's OpenJDK
        ('openjdk version "21" 2023-09-19', 21),  # GA releases have no minor part
        ('openjdk version "25-ea" 2025-09-16', 25),  # early-access builds
        ('java version "1.8.0_392"', 8),  # pre-9 scheme: the major is the second number
        ('java version "11.0.2" 2019-01-15 LTS', 11),  # Oracle's wording
    ],
)
def test_parse_java_major(output: str, major: int) -> None:
    assert parse_java_major(output) == major


def test_parse_java_major_rejects_unknown_output() -> None:
    with pytest.raises(LocalKafkaError, match="Java version"):
        parse_java_major("bash: java: command not found")


def test_default_cache_dir_honours_the_override_then_xdg(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STREAMKPI_KAFKA_CACHE", str(tmp_path / "override"))
    assert default_cache_dir() == tmp_path / "override"

    monkeypatch.delenv("STREAMKPI_KAFKA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "streamkpi" / f"kafka-{kafka_version()}"


def _no_java_check() -> str:
    return "java"


def test_ensure_jars_reuses_a_complete_cache_without_maven(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    libs = tmp_path / "libs"
    libs.mkdir()
    (libs / ".streamkpi-complete").write_text(localkafka._pom_stamp())
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no mvn, no java

    assert ensure_jars(tmp_path, progress=pytest.fail) == libs


@pytest.mark.parametrize(
    "marker",
    [
        None,  # interrupted download: the marker is written last
        "kafka 4.0.0 pom-sha256 0000\n",  # cached for another pom (a version bump)
    ],
)
def test_ensure_jars_does_not_trust_an_unmarked_or_stale_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, marker: str | None
) -> None:
    libs = tmp_path / "libs"
    libs.mkdir()
    (libs / "kafka_2.13-4.0.0.jar").write_bytes(b"")
    if marker is not None:
        (libs / ".streamkpi-complete").write_text(marker)
    monkeypatch.setattr(localkafka, "find_java", _no_java_check)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no mvn

    with pytest.raises(LocalKafkaError, match="mvn not found"):
        ensure_jars(tmp_path, progress=pytest.fail)


def test_ensure_jars_reports_a_maven_failure_and_leaves_no_partial_libs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_mvn = bin_dir / "mvn"
    fake_mvn.write_text(
        "#!/bin/sh\n"
        'echo "[ERROR] Could not resolve dependencies for project streamkpi-local-kafka"\n'
        "exit 1\n"
    )
    fake_mvn.chmod(0o755)
    monkeypatch.setattr(localkafka, "find_java", _no_java_check)
    monkeypatch.setenv("PATH", str(bin_dir))
    cache = tmp_path / "cache"
    messages: list[str] = []

    with pytest.raises(LocalKafkaError, match=r"Maven failed \(exit 1\)") as failure:
        ensure_jars(cache, progress=messages.append)

    assert "Could not resolve dependencies" in str(failure.value)
    assert messages == [
        f"fetching Apache Kafka {kafka_version()} jars with Maven (first run only)..."
    ]
    assert sorted(p.name for p in cache.iterdir()) == [".lock"]  # no libs, no partial dir


def test_find_java_without_java_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))

    with pytest.raises(LocalKafkaError, match="Java 17 or newer"):
        localkafka.find_java()


def test_free_port_avoids_excluded_ports() -> None:
    first = free_port()
    assert 0 < first < 65536
    assert free_port(exclude={first}) != first


def test_error_lines_quote_each_error_with_the_exception_under_it() -> None:
    log = "\n".join(
        [
            "[2026-01-01 00:00:00,000] INFO starting (kafka.Kafka)",
            "[2026-01-01 00:00:01,000] ERROR Unable to start acceptor (kafka.network.Acceptor)",
            "org.apache.kafka.common.KafkaException: Socket server failed to bind",
            "\tat kafka.network.Acceptor.openServerSocket(SocketServer.scala:1)",
            "[2026-01-01 00:00:02,000] ERROR Exiting Kafka (kafka.Kafka$)",
        ]
    )

    assert localkafka._error_lines(log) == (
        "[2026-01-01 00:00:01,000] ERROR Unable to start acceptor (kafka.network.Acceptor)\n"
        "    org.apache.kafka.common.KafkaException: Socket server failed to bind\n"
        "[2026-01-01 00:00:02,000] ERROR Exiting Kafka (kafka.Kafka$)"
    )


def test_extra_listeners_and_properties_extend_the_defaults() -> None:
    plain = render_server_properties(port=1, controller_port=2, log_dir=Path("/x"))
    text = render_server_properties(
        port=1,
        controller_port=2,
        log_dir=Path("/x"),
        listeners=[localkafka.Listener("SASL", "SASL_PLAINTEXT", 3)],
        properties={"sasl.enabled.mechanisms": "PLAIN", "num.partitions": "2"},
    )
    props, defaults = _properties(text), _properties(plain)
    assert props["listeners"] == defaults["listeners"] + ",SASL://127.0.0.1:3"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:1,SASL://127.0.0.1:3"
    assert props["listener.security.protocol.map"] == (
        "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL:SASL_PLAINTEXT"
    )
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "PLAIN"
    # Java's Properties keeps the last of a repeated key: the extra setting wins.
    assert text.rindex("num.partitions=2") > text.index("num.partitions=4")
    assert props.keys() >= defaults.keys()
