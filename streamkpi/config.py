"""Settings: one frozen object built from the environment and an optional YAML file."""

from __future__ import annotations

import contextvars
import difflib
import os
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

__all__ = [
    "ConfigError",
    "KafkaSecurity",
    "LabelCaps",
    "Settings",
    "Topics",
    "WebView",
    "load_settings",
    "parse_duration_s",
    "unknown_env_vars",
]

ENV_PREFIX = "STREAMKPI_"

# Set by load_settings() for the duration of one Settings() call: pydantic-settings
# reads sources through a classmethod, so the file path has to reach it out of band.
_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "streamkpi_config_file", default=None
)

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ConfigError(Exception):
    """Raised when settings are invalid; the message is meant for a human, one line per problem."""


def parse_duration_s(text: str) -> int:
    """Return the seconds in a Prometheus-style duration such as ``5m``, ``1h`` or ``7d``."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 1h, 24h or 7d")
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return seconds


class Topics(BaseModel):
    """Kafka topic names (DESIGN.md §2 defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pageviews: str = "pageviews"
    emails: str = "emails"
    orders: str = "orders"
    adspend: str = "adspend"
    surveys: str = "surveys"
    dlq: str = "streamkpi-dlq"
    # Compacted; per-partition KPI snapshots for campaign tooling (see README).
    snapshots: str = "kpi-snapshots"

    @field_validator("*")
    @classmethod
    def _legal_topic_name(cls, value: str) -> str:
        # Kafka's own rule: 1-249 chars of [a-zA-Z0-9._-].
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", value):
            raise ValueError(f"{value!r} is not a legal Kafka topic name")
        return value


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSecurity(BaseModel):
    """How the worker authenticates to Kafka."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    # Mutual TLS: the client's certificate (PEM, may include the chain) and its private key
    # (PEM; ssl_key_password if it is encrypted). Used with SSL and SASL_SSL.
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None

    @model_validator(mode="after")
    def _complete(self) -> KafkaSecurity:
        if self.protocol.startswith("SASL") and not (self.sasl_username and self.sasl_password):
            raise ValueError(f"protocol {self.protocol} needs sasl_username and sasl_password")
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path: Path | None = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name} {str(path)!r} is not a readable file")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("ssl_keyfile needs ssl_certfile (the client certificate)")
        if self.ssl_key_password is not None and self.ssl_certfile is None:
            raise ValueError("ssl_key_password needs ssl_certfile and ssl_keyfile")
        return self


class LabelCaps(BaseModel):
    """Bounds on Prometheus label cardinality; values past a cap fold into ``other``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_campaigns: int = Field(default=50, ge=1, le=10_000)
    max_pages: int = Field(default=50, ge=1, le=10_000)
    # Longest campaign or page value accepted; a longer one is refused (out_of_range), not
    # cut (a cut name could merge two campaigns). 200 is also the ceiling (#12).
    max_label_chars: int = Field(default=200, ge=1, le=200)
    # Campaigns always kept as their own label value, whatever the cap.
    campaign_allowlist: tuple[str, ...] = ()


class WebView(BaseModel):
    """The live page at ``/`` of the worker's web server (#16)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Prometheus's base URL (http://host:9090): the page then shows cluster-wide values
    # (the component gauges of every worker, summed by Prometheus) instead of this
    # worker's partitions only.
    prometheus_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    # Alertmanager's base URL (http://host:9093): the page lists the firing alerts.
    alertmanager_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    # The alert config whose thresholds colour the tiles (default: the shipped one).
    alerts_file: Path | None = None
    # Trends: the window values are sampled every sample_s and kept for history_s.
    sample_s: float = Field(default=20.0, ge=1, le=600)
    history_s: int = Field(default=3900, ge=60, le=86_400)
    # Trend series kept per window (overall, each campaign, channel and pair): bounds
    # the page's memory; a selection past it shows no trend, and says so.
    max_series: int = Field(default=150, ge=1, le=10_000)


class Settings(BaseSettings):
    """Every knob of a streamkpi worker; env vars ``STREAMKPI_*`` override the YAML file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    app_id: str = Field(default="streamkpi", pattern=r"^[A-Za-z0-9._-]+$")
    bootstrap_servers: str = "127.0.0.1:9092"
    topics: Topics = Topics()
    # Partitions of the topics and changelogs streamkpi creates; bounds the worker count.
    topic_partitions: int = Field(default=4, ge=1, le=1024)
    # Replicas of the topics streamkpi creates (1 suits a single local broker only).
    topic_replication_factor: int = Field(default=1, ge=1, le=16)
    kafka: KafkaSecurity = KafkaSecurity()

    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    data_dir: Path = Path(".streamkpi")

    bucket_s: int = Field(default=60, ge=1, le=3600)
    windows: Annotated[tuple[str, ...], NoDecode] = ("5m", "1h", "24h")
    allowed_lateness_s: int = Field(default=300, ge=0, le=86_400)
    dedup_horizon_s: int = Field(default=3600, ge=0, le=7 * 86_400)
    session_gap_s: int = Field(default=1800, ge=60, le=86_400)  # GA4's 30 min default
    # A topic-partition idle this long with nothing left to read lets its watermark follow
    # the clock, so sessions, carts and churn timers still fire when traffic stops.
    idle_after_s: float = Field(default=30.0, gt=0)
    visitor_memory_s: int = Field(default=30 * 86_400, ge=0)  # "new visitor" look-back
    email_memory_s: int = Field(default=30 * 86_400, ge=0)  # unique open/click look-back
    customer_memory_s: int = Field(default=400 * 86_400, ge=0)  # "returning" look-back
    churn_after_s: int = Field(default=90 * 86_400, ge=60)
    abandon_after_s: int = Field(default=1800, ge=60)
    # Open carts one customer may hold at once (#12): a customer's carts are one state
    # entry, so this bounds it in bytes (150 worst-case carts stay below a producer batch).
    # The cart_created past it is dead-lettered (out_of_range) and counts nothing.
    max_open_carts: int = Field(default=50, ge=1, le=150)
    lead_events: tuple[str, ...] = ("signup",)
    # The key-event name that makes a session count as converted (conversion_rate).
    purchase_event: str = Field(default="purchase", min_length=1, max_length=200)
    # How often state, offsets and dead letters are committed (one Kafka transaction).
    checkpoint_interval_s: float = Field(default=1.0, gt=0, le=60)
    # How often KPI snapshots go to topics.snapshots (with the next checkpoint).
    snapshot_interval_s: float = Field(default=10.0, gt=0, le=3600)
    # Identifies this worker's transactions across restarts (default: host name + web port).
    worker_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]+$")
    transaction_timeout_s: float = Field(default=30.0, ge=1, le=900)
    labels: LabelCaps = LabelCaps()
    web_view: WebView = WebView()

    max_event_bytes: int = Field(default=65_536, ge=256, le=16 * 1024 * 1024)
    # Producers' clocks drift; beyond this an event is "from the future", not early.
    max_future_s: float = Field(default=300.0, ge=0)
    reporting_currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    # Multiplier from each currency into the reporting currency. Unknown currency = invalid event.
    currency_rates: dict[str, Decimal] = Field(default_factory=lambda: {"EUR": Decimal(1)})

    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("windows", mode="before")
    @classmethod
    def _split_windows(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("windows")
    @classmethod
    def _valid_windows(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one window is needed, e.g. 5m,1h,24h")
        seconds = [parse_duration_s(w) for w in value]
        if len(set(seconds)) != len(seconds):
            raise ValueError(f"windows {', '.join(value)} repeat a duration")
        return tuple(w for _, w in sorted(zip(seconds, value, strict=True)))

    @field_validator("currency_rates")
    @classmethod
    def _valid_rates(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for code, rate in value.items():
            if not re.fullmatch(r"[A-Z]{3}", code):
                raise ValueError(f"{code!r} is not an ISO 4217 code")
            if rate <= 0:
                raise ValueError(f"rate for {code} must be positive, got {rate}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        for window, seconds in self.window_seconds.items():
            if seconds % self.bucket_s:
                raise ValueError(
                    f"window {window} is not a whole number of {self.bucket_s}s buckets"
                )
        if self.allowed_lateness_s >= self.session_gap_s:
            # A non-late event could then belong before a session that already replaced it.
            raise ValueError("allowed_lateness_s must be smaller than session_gap_s")
        if self.reporting_currency not in self.currency_rates:
            raise ValueError(
                f"currency_rates has no rate for the reporting currency {self.reporting_currency}"
            )
        if self.currency_rates[self.reporting_currency] != 1:
            raise ValueError(f"the reporting currency {self.reporting_currency} must have rate 1")
        return self

    @property
    def window_seconds(self) -> dict[str, int]:
        """Map each window label to its length in seconds, shortest first."""
        return {w: parse_duration_s(w) for w in self.windows}

    @property
    def web_url(self) -> str:
        """Return the base URL of the worker's web server."""
        return f"http://{self.web_host}:{self.web_port}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order the sources: explicit arguments, then environment, then the YAML file."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "settings"


def _env_name(loc: tuple[int | str, ...]) -> str:
    names = [str(part) for part in loc if isinstance(part, str)]
    return ENV_PREFIX + "__".join(names).upper()


def format_validation_error(exc: ValidationError) -> str:
    """Render a settings ValidationError as one line per problem, naming field and env var."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        where = f"setting {_field_path(loc)!r} (env {_env_name(loc)})" if loc else "settings"
        lines.append(f"invalid {where}: {message}")
    return "\n".join(lines)


# STREAMKPI_* variables that are not settings: read by the CLI, the tools and the tests.
OTHER_ENV_VARS = frozenset(
    {
        "STREAMKPI_CONFIG_FILE",  # --config
        "STREAMKPI_ALERTS_FILE",  # --alerts of the rules/dashboards commands
        "STREAMKPI_KAFKA_CACHE",  # where the Kafka jars go
        "STREAMKPI_TOOLS_CACHE",  # where .ci/deploy-tools builds its tools
        "STREAMKPI_SCREENSHOT_DIR",  # the browser tests' screenshots
        "STREAMKPI_BACKTEST_ALL",  # the long backtest cases
    }
)


def _env_names(model: type[BaseModel], prefix: str) -> set[str]:
    """Return the env var names that set ``model``'s fields (a nested model's too)."""
    names: set[str] = set()
    for field_name, info in model.model_fields.items():
        name = prefix + field_name.upper()
        names.add(name)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _env_names(annotation, name + "__")
    return names


def unknown_env_vars(environ: Mapping[str, str]) -> list[str]:
    """Return one line per ``STREAMKPI_*`` variable that sets nothing, with the closest name.

    pydantic-settings ignores them, so ``STREAMKPI_BOOTSTRAP_SERVER=kafka:9092`` (no S)
    would silently leave the worker on 127.0.0.1:9092 (#14).
    """
    known = _env_names(Settings, ENV_PREFIX) | OTHER_ENV_VARS
    problems = []
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known:
            continue
        close = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else ""
        problems.append(f"unknown environment variable {variable}{hint}")
    return problems


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from overrides, env vars and ``config_file``; raise ConfigError if invalid.

    A ``STREAMKPI_*`` environment variable that is no setting is refused, naming the
    closest one: a typo must not leave a default in place without a word (#14).
    """
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {str(config_file)!r} does not exist")
    unknown = unknown_env_vars(os.environ)
    if unknown:
        raise ConfigError(
            "\n".join(unknown)
            + "\n(streamkpi reads STREAMKPI_* variables as settings: `streamkpi config show` "
            'lists them; README "Configuration")'
        )
    token = _config_file.set(config_file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    except (ValueError, TypeError, yaml.YAMLError) as exc:  # e.g. YAML that does not parse
        raise ConfigError(f"invalid config file {str(config_file)!r}: {exc}") from None
    finally:
        _config_file.reset(token)
