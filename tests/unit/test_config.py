"""Settings: defaults, sources and their precedence, and one-line errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from streamkpi.config import ConfigError, Settings, load_settings, parse_duration_s


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("STREAMKPI_"):
            monkeypatch.delenv(name)


def test_defaults_follow_the_design() -> None:
    s = load_settings()
    assert s.topics.pageviews == "pageviews"
    assert s.topics.dlq == "streamkpi-dlq"
    assert s.web_host == "127.0.0.1"  # never listen on every interface unless asked
    assert s.windows == ("5m", "1h", "24h")
    assert s.window_seconds == {"5m": 300, "1h": 3600, "24h": 86400}
    assert s.session_gap_s == 1800
    assert s.kafka.protocol == "PLAINTEXT"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("24h", 86400),
        ("7d", 604800),
        ("1w", 604800),
    ],
)
def test_parse_duration_s_accepts_prometheus_durations(text: str, seconds: int) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "m", "5 m", "-5m", "0m", "1.5h", "5M"])
def test_parse_duration_s_refuses_non_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|longer than zero"):
        parse_duration_s(text)


def test_env_overrides_yaml_file_and_options_override_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "streamkpi.yaml"
    cfg.write_text("web_port: 7000\nbucket_s: 30\ntopics:\n  pageviews: web.pv\n")
    monkeypatch.setenv("STREAMKPI_WEB_PORT", "7001")
    s = load_settings(cfg)
    assert (s.web_port, s.bucket_s, s.topics.pageviews) == (7001, 30, "web.pv")
    assert load_settings(cfg, web_port=7002).web_port == 7002


def test_windows_from_env_are_comma_separated_and_sorted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMKPI_WINDOWS", "1h, 5m")
    assert load_settings().windows == ("5m", "1h")


def test_nested_env_uses_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMKPI_TOPICS__ORDERS", "shop.orders")
    monkeypatch.setenv("STREAMKPI_CURRENCY_RATES", '{"EUR": 1, "USD": "0.9"}')
    s = load_settings()
    assert s.topics.orders == "shop.orders"
    assert s.currency_rates["USD"] == Decimal("0.9")


def test_password_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMKPI_KAFKA__PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("STREAMKPI_KAFKA__SASL_USERNAME", "u")
    monkeypatch.setenv("STREAMKPI_KAFKA__SASL_PASSWORD", "hunter2")
    s = load_settings()
    assert s.kafka.sasl_password is not None
    assert s.kafka.sasl_password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(s)
    assert "hunter2" not in str(s.model_dump(mode="json"))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        # why: a port must fit in 16 bits; the message names field and env var
        (
            {"STREAMKPI_WEB_PORT": "70000"},
            "invalid setting 'web_port' (env STREAMKPI_WEB_PORT): Input should be less than or "
            "equal to 65535",
        ),
        # why: a typo in a number is named, not a traceback
        ({"STREAMKPI_BUCKET_S": "sixty"}, "invalid setting 'bucket_s' (env STREAMKPI_BUCKET_S)"),
        # why: windows are Prometheus-style durations
        ({"STREAMKPI_WINDOWS": "5min"}, "is not a duration"),
        # why: a window that is not whole buckets cannot be summed from buckets
        ({"STREAMKPI_WINDOWS": "90s"}, "window 90s is not a whole number of 60s buckets"),
        # why: SASL without credentials can only fail later, obscurely
        ({"STREAMKPI_KAFKA__PROTOCOL": "SASL_SSL"}, "needs sasl_username and sasl_password"),
        # why: only the four Kafka protocols exist
        ({"STREAMKPI_KAFKA__PROTOCOL": "TLS"}, "invalid setting 'kafka.protocol'"),
        # why: an illegal topic name would be refused by the broker at runtime
        ({"STREAMKPI_TOPICS__DLQ": "dead letters"}, "is not a legal Kafka topic name"),
        # why: amounts cannot be converted without a rate for the reporting currency
        ({"STREAMKPI_REPORTING_CURRENCY": "USD"}, "no rate for the reporting currency USD"),
    ],
)
def test_invalid_settings_raise_one_clear_line(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    text = str(info.value)
    assert message in text
    assert len(text.splitlines()) == 1
    assert "Traceback" not in text


def test_unknown_key_in_yaml_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("web_prot: 7000\n")
    with pytest.raises(ConfigError, match=r"invalid setting .web_prot.*Extra inputs"):
        load_settings(cfg)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_unparsable_yaml_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("web_port: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid config file"):
        load_settings(cfg)


def test_label_and_cart_bounds_reach_parse_and_the_engine() -> None:
    from streamkpi.app import parse_context
    from streamkpi.kpis.config import EngineConfig

    settings = Settings(labels={"max_label_chars": 8}, max_open_carts=3)
    assert parse_context(settings).max_label_chars == 8
    assert EngineConfig.from_settings(settings).max_open_carts == 3
    with pytest.raises(ValidationError):
        Settings(labels={"max_label_chars": 201})
    with pytest.raises(ValidationError):
        Settings(max_open_carts=151)


@pytest.mark.parametrize(
    ("variable", "hint"),
    [
        ("STREAMKPI_BOOTSTRAP_SERVER", "did you mean STREAMKPI_BOOTSTRAP_SERVERS?"),
        ("STREAMKPI_TOPICS__PAGEVIEW", "did you mean STREAMKPI_TOPICS__PAGEVIEWS?"),
        ("streamkpi_web_prot", "did you mean STREAMKPI_WEB_PORT?"),
        ("STREAMKPI_WEB_VEW__SAMPLE_S", "did you mean STREAMKPI_WEB_VIEW__SAMPLE_S?"),
    ],
)
def test_a_mistyped_env_var_is_refused_with_the_closest_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, hint: str
) -> None:
    # #14: pydantic-settings ignores it, so the worker silently kept 127.0.0.1:9092.
    monkeypatch.setenv(variable, "kafka:9092")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert f"unknown environment variable {variable}; {hint}" in str(refused.value)


def test_settings_nested_settings_and_the_tools_variables_are_known(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable, value in {
        "STREAMKPI_BOOTSTRAP_SERVERS": "kafka:9092",
        "streamkpi_web_port": "7000",  # env names are case-insensitive, as pydantic reads them
        "STREAMKPI_KAFKA__PROTOCOL": "SSL",
        "STREAMKPI_KAFKA": '{"protocol": "SSL"}',  # a nested model as one JSON value
        "STREAMKPI_LABELS__MAX_CAMPAIGNS": "3",
        "STREAMKPI_WEB_VIEW__SAMPLE_S": "5",
        "STREAMKPI_KAFKA_CACHE": "/tmp/jars",
        "STREAMKPI_SCREENSHOT_DIR": "/tmp/shots",
        "STREAMKPI_CONFIG_FILE": "",
    }.items():
        monkeypatch.setenv(variable, value)
    settings = load_settings()
    assert (settings.web_port, settings.web_view.sample_s) == (7000, 5)
    assert settings.labels.max_campaigns == 3
