"""The wire contract of the five source topics: pydantic models and one fast parse function.

Every event is one UTF-8 JSON object per Kafka message. ``parse`` turns its bytes into a
frozen model or a ``Rejection`` carrying a machine-readable ``Reason``; it never raises,
so no message can kill a worker. The happy path is pydantic-core's Rust JSON validation
plus a few attribute reads; a ``ValidationError`` is turned into a reason only on the
failure path.

Event time is ``ts`` on the wire and ``ts_s`` (float epoch seconds) on the models:

* an RFC 3339 string with ``Z`` or a UTC offset. A space instead of ``T`` is tolerated,
  digits beyond microseconds are truncated. A string without offset is ``bad_ts``:
  guessing the producer's time zone would shift windows by hours;
* an epoch number (or numeric string), with pydantic-core's rule: ``abs(ts) <= 2e10``
  is seconds, larger is milliseconds. 2e10 s is the year 2603 and 2e10 ms is
  1970-08-20, so no plausible event time is ambiguous;
* anything else, ``true``/``false`` and ``null`` included, is ``bad_ts``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, TypeAlias, overload

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PlainValidator,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError, core_schema

__all__ = [
    "AdSpendEvent",
    "Channel",
    "EmailEvent",
    "Event",
    "Kind",
    "OrderEvent",
    "PageviewEvent",
    "ParseContext",
    "Reason",
    "Rejection",
    "SurveyEvent",
    "derive_channel",
    "parse",
]


class Kind(StrEnum):
    """A logical source topic (the actual topic names are configurable)."""

    pageviews = "pageviews"
    emails = "emails"
    orders = "orders"
    adspend = "adspend"
    surveys = "surveys"


class Reason(StrEnum):
    """Why an event was refused: the ``reason`` of its dead letter."""

    invalid_json = "invalid_json"  # not JSON, not UTF-8, or no value at all (tombstone)
    not_an_object = "not_an_object"  # valid JSON, but an array, string, number or null
    missing_field = "missing_field"
    bad_type = "bad_type"  # wrong JSON type for a field, e.g. a number where an id goes
    bad_value = "bad_value"  # right type, value out of domain: empty id, unknown `type`...
    # A number, id or label beyond its documented bound (README "Reliability", #12).
    out_of_range = "out_of_range"
    bad_ts = "bad_ts"
    future_ts = "future_ts"
    too_large = "too_large"
    unknown_currency = "unknown_currency"
    bad_score = "bad_score"
    bad_channel = "bad_channel"
    unknown_topic = "unknown_topic"
    # Decided by the engine, never by parse(): they need state (watermark, seen ids).
    late = "late"
    duplicate = "duplicate"


class Channel(StrEnum):
    """A traffic channel: GA4's default channel grouping folded into seven groups."""

    organic = "organic"
    paid = "paid"
    referral = "referral"
    direct = "direct"
    email = "email"
    social = "social"
    other = "other"


@dataclass(frozen=True, slots=True)
class Rejection:
    """An invalid event: a machine-readable reason and a short human-readable detail."""

    reason: Reason
    detail: str


_CURRENCY_RE: Final = re.compile(r"[A-Z]{3}")


# Bounds (#12, README "Reliability"): everything that reaches state, the state topic, a
# dead letter or a label is bounded here, so a hostile producer cannot make an entry
# that orjson cannot encode (a >64-bit int) or the broker cannot hold (a MB-long id).
MAX_ID_CHARS: Final = 256  # ids (dedup keys, visitor/session/cart/order/customer ids)
MAX_LABEL_CHARS: Final = 200  # hard ceiling of a label value before the configurable cap
MAX_ENGAGED_MS: Final = 86_400_000  # 24 h of engagement in one event


@dataclass(frozen=True)
class ParseContext:
    """Limits and currency rates that ``parse`` applies.

    ``rates`` maps ISO 4217 codes to the multiplier into ``reporting_currency``; the
    reporting currency is added at rate 1 when missing. The mapping is copied read-only
    so a caller cannot change the rates under a running worker.
    """

    max_bytes: int = 65_536
    max_future_s: float = 300.0
    # Longest campaign or page label accepted (labels.max_label_chars): at most
    # MAX_LABEL_CHARS, the bound the state-entry sizes are computed with (#12).
    max_label_chars: int = MAX_LABEL_CHARS
    rates: Mapping[str, Decimal] = field(default_factory=lambda: {"EUR": Decimal(1)})
    reporting_currency: str = "EUR"

    def __post_init__(self) -> None:
        """Check the label bound and the rates once here, so that parse never meets a bad one."""
        if not 1 <= self.max_label_chars <= MAX_LABEL_CHARS:
            raise ValueError(f"max_label_chars must be 1..{MAX_LABEL_CHARS}")
        if not _CURRENCY_RE.fullmatch(self.reporting_currency):
            raise ValueError(f"reporting_currency {self.reporting_currency!r} is not ISO 4217")
        rates: dict[str, Decimal] = {}
        for code, rate in self.rates.items():
            if not _CURRENCY_RE.fullmatch(code):
                raise ValueError(f"currency {code!r} is not an ISO 4217 code")
            if not isinstance(rate, Decimal) or not rate.is_finite() or rate <= 0:
                raise ValueError(f"rate for {code} must be a positive finite Decimal, got {rate!r}")
            rates[code] = rate
        rates.setdefault(self.reporting_currency, Decimal(1))
        if rates[self.reporting_currency] != 1:
            raise ValueError(f"rate of the reporting currency {self.reporting_currency} must be 1")
        object.__setattr__(self, "rates", MappingProxyType(rates))


# ---------------------------------------------------------------------------------------
# Field types: declarative pydantic-core schemas, so that validation runs in Rust.

# pydantic-core's own switch from epoch seconds to milliseconds (speedate's MS_WATERSHED).
_MS_WATERSHED: Final = 2e10
# 0001-01-01 and 9999-12-31T23:59:59.999 in epoch ms: the range a datetime can hold.
_MIN_EPOCH_MS: Final = -62_135_596_800_000
_MAX_EPOCH_MS: Final = 253_402_300_799_999


def _epoch_number_s(value: float) -> float:
    """Return seconds for an epoch number in seconds or milliseconds, like pydantic-core."""
    return value / 1000 if value > _MS_WATERSHED or value < -_MS_WATERSHED else value


class _EpochSeconds:
    """Validate RFC 3339 with offset, or epoch seconds / milliseconds, into epoch seconds."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Return a union: numbers stay floats, strings go through the datetime parser."""
        # Numbers skip the datetime round trip: datetime.timestamp() on pydantic's TzInfo
        # costs ~0.4 us per event, a sixth of a whole pageview. The strict float branch
        # refuses booleans; numeric strings fall through to the datetime branch.
        number = core_schema.no_info_after_validator_function(
            _epoch_number_s,
            core_schema.float_schema(
                strict=True, allow_inf_nan=False, ge=_MIN_EPOCH_MS, le=_MAX_EPOCH_MS
            ),
        )
        text = core_schema.no_info_after_validator_function(
            datetime.timestamp, core_schema.datetime_schema(tz_constraint="aware")
        )
        return core_schema.union_schema(
            [number, text],
            mode="left_to_right",
            serialization=core_schema.simple_ser_schema("float"),
        )


class _Lowercase:
    """Strip and lowercase a string before the annotated schema (an enum) validates it."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Chain a lowercasing str schema in front of the handler's schema."""
        return core_schema.chain_schema(
            [core_schema.str_schema(strip_whitespace=True, to_lower=True), handler(source)]
        )


def _url_path(value: str | None) -> str | None:
    """Return the path of a page URL: query string and fragment dropped (PII, #12)."""
    if value is None:
        return None
    cut = len(value)
    for sep in ("?", "#"):
        at = value.find(sep)
        if at != -1 and at < cut:
            cut = at
    return value[:cut]


EpochSeconds = Annotated[float, _EpochSeconds()]
Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)]
OptId = Annotated[str, StringConstraints(max_length=MAX_ID_CHARS)] | None
# Page: the URL path only; the length is checked after the query string is gone.
Page = Annotated[
    Annotated[str, StringConstraints(max_length=MAX_LABEL_CHARS)] | None,
    WrapValidator(lambda v, h: h(_url_path(v) if isinstance(v, str) else v)),
]
Label = Annotated[str, StringConstraints(max_length=MAX_LABEL_CHARS)] | None
Currency = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{3}$")
]
# 1e15 is beyond any real order or budget in any currency, and keeps the conversion far
# from Decimal overflow ("1e999999" is a valid Decimal string).
Money = Annotated[Decimal, Field(ge=0, lt=Decimal("1e15"), allow_inf_nan=False)]
LowerChannel = Annotated[Channel, _Lowercase()]


class _Event(BaseModel):
    """Fields every event has. Unknown fields are ignored: producers may add fields."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: Id
    ts_s: EpochSeconds = Field(alias="ts")


# ---------------------------------------------------------------------------------------
# Channel derivation

_NO_MEDIUM: Final = frozenset({"", "(none)", "none", "(not set)"})
_PAID_MEDIUMS: Final = frozenset(
    {"ppc", "retargeting", "display", "banner", "interstitial", "expandable"}
)
_EMAIL_NAMES: Final = frozenset({"email", "e-mail", "e_mail", "e mail", "newsletter"})
_SOCIAL_MEDIUMS: Final = frozenset(
    {"social", "social-network", "social-media", "social network", "social media", "sm"}
)
_REFERRAL_MEDIUMS: Final = frozenset({"referral", "app", "link"})
_SEARCH_LABELS: Final = frozenset(
    {"google", "bing", "duckduckgo", "yahoo", "baidu", "yandex", "ecosia"}
)
_SOCIAL_LABELS: Final = frozenset(
    {"facebook", "instagram", "twitter", "linkedin", "tiktok", "reddit", "youtube", "pinterest"}
)
# Short domains whose labels say nothing ("t", "x"): matched as the host or its suffix.
_SOCIAL_DOMAINS: Final = ("t.co", "x.com", "fb.com", "lnkd.in", "youtu.be", "pin.it")
_SOCIAL_SUFFIXES: Final = tuple("." + domain for domain in _SOCIAL_DOMAINS)
_SOCIAL_SOURCES: Final = frozenset({"fb", "ig", "x"})
# Referer headers are absolute URLs; the scheme-less branch is for hand-made referrers.
_HOST_RE: Final = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://(?:[^/?#@]*@)?([^/?#:]*)|([^/?#:]*)")


def _site_channel(name: str) -> Channel | None:
    """Return organic for a search engine's host, social for a social network's, else None."""
    labels = name.split(".")
    if not _SEARCH_LABELS.isdisjoint(labels):
        return Channel.organic
    if (
        not _SOCIAL_LABELS.isdisjoint(labels)
        or name in _SOCIAL_DOMAINS
        or name.endswith(_SOCIAL_SUFFIXES)
    ):
        return Channel.social
    return None


def derive_channel(utm_medium: str | None, utm_source: str | None, referrer: str | None) -> Channel:
    """Derive the channel of a hit from its UTM tags and referrer (GA4 rules, simplified).

    Tags are stripped and lowercased; a ``(none)``, ``none`` or ``(not set)`` medium is
    absent, as is a ``(direct)`` source. The first rule that matches wins:

    1. medium containing ``cp`` (cpc, cpm, cpv...), ``ppc``, ``paid*``, ``display``,
       ``banner``, ``retargeting`` -> paid (GA4's paid search, social, video, shopping
       and display fold into one group);
    2. medium email/e-mail/newsletter -> email; social/social-network/sm -> social;
       organic -> organic; referral/app/link -> referral;
    3. a source naming a search engine (a ``google``, ``bing``, ``duckduckgo``, ``yahoo``,
       ``baidu``, ``yandex`` or ``ecosia`` label) -> organic; a social network
       (``facebook``, ``instagram``, ``twitter``, ``linkedin``, ``tiktok``, ``reddit``,
       ``youtube``, ``pinterest``, ``t.co``, ``x.com``, ``fb``, ``ig``, ``x``...) ->
       social; email/newsletter -> email;
    4. any other medium -> other (GA4's affiliates, audio, sms... and typos);
    5. a referrer whose host is a search engine -> organic, a social network -> social,
       anything else -> referral;
    6. a source but no medium and no referrer -> other (GA4's "Unassigned");
    7. nothing at all -> direct.
    """
    medium = utm_medium.strip().lower() if utm_medium else ""
    if medium in _NO_MEDIUM:
        medium = ""
    elif "cp" in medium or medium.startswith("paid") or medium in _PAID_MEDIUMS:
        return Channel.paid
    elif medium in _EMAIL_NAMES:
        return Channel.email
    elif medium in _SOCIAL_MEDIUMS:
        return Channel.social
    elif medium == "organic":
        return Channel.organic
    elif medium in _REFERRAL_MEDIUMS:
        return Channel.referral
    source = utm_source.strip().lower() if utm_source else ""
    if source == "(direct)":
        source = ""
    elif source:
        if source in _EMAIL_NAMES:
            return Channel.email
        if source in _SOCIAL_SOURCES:
            return Channel.social
        site = _site_channel(source)
        if site is not None:
            return site
    if medium:
        return Channel.other
    if referrer:
        match = _HOST_RE.match(referrer.strip())
        host = (match.group(1) or match.group(2) or "").lower() if match else ""
        if host:
            return _site_channel(host) or Channel.referral
    return Channel.other if source else Channel.direct


def _channel_from_data(data: dict[str, Any]) -> Channel:
    """Derive the channel of an event without one from its already-validated fields."""
    # .get: a field that failed validation is absent from data (the event fails anyway).
    return derive_channel(data.get("utm_medium"), data.get("utm_source"), data.get("referrer"))


def _channel_or_derived(
    value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
) -> Channel:
    """Treat an explicit null, empty or blank channel like an absent one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return _channel_from_data(info.data)
    channel: Channel = handler(value)
    return channel


# ---------------------------------------------------------------------------------------
# Conversion into the reporting currency, inside validation when parse passes its context


def _in_reporting(amount_field: str) -> Callable[[Any, ValidationInfo], Decimal | None]:
    """Return a validator computing ``amount_field`` in the reporting currency.

    With a ParseContext as validation context (what parse passes) the input value is
    ignored and the conversion computed, so a producer cannot inject one. Without it
    (a model built in a test or a replay) a given Decimal or None is kept as it is.
    """

    def convert(value: Any, info: ValidationInfo) -> Decimal | None:
        ctx = info.context
        if not isinstance(ctx, ParseContext):
            if value is None or isinstance(value, Decimal):
                return value
            raise PydanticCustomError("bad_type", "expected a Decimal or None")
        data = info.data
        if amount_field not in data or "currency" not in data:
            return None  # that field failed validation and has its own error
        amount: Decimal | None = data[amount_field]
        currency: str | None = data["currency"]
        if amount is None:
            event_type = data.get("type")
            if event_type in ("purchase", "refund"):
                raise PydanticCustomError(
                    "missing_field", f"missing field {amount_field!r} (required for {event_type})"
                )
            return None
        if currency is None:
            raise PydanticCustomError(
                "missing_field", f"missing field 'currency' (required with {amount_field!r})"
            )
        rate = ctx.rates.get(currency)
        if rate is None:
            raise PydanticCustomError(
                "unknown_currency", f"field 'currency': no rate configured for {currency!r}"
            )
        return amount * rate

    return convert


# ---------------------------------------------------------------------------------------
# The models


class PageviewEvent(_Event):
    """A web analytics hit: page view, engagement time or key event (e.g. ``signup``).

    Unknown fields are ignored. ``channel`` is derived with ``derive_channel`` when it is
    absent, null or empty; it is lowercased, and any value outside the seven channels is
    ``bad_channel`` (a typo would otherwise move traffic silently into ``other``).
    ``engaged_ms`` is required for ``engagement`` and ``name`` for ``key_event``: parse
    checks both, out of the per-event hot path of plain page views.
    """

    visitor_id: Id
    session_id: OptId = None
    type: Literal["page_view", "engagement", "key_event"] = "page_view"
    engaged_ms: Annotated[int, Field(ge=0, le=MAX_ENGAGED_MS, strict=True)] | None = None
    name: Label = None
    page: Page = None
    referrer: Annotated[str, StringConstraints(max_length=2048)] | None = None
    campaign: Label = None
    utm_source: Label = None
    utm_medium: Label = None
    # Last: a default factory only sees the fields declared before it.
    channel: Annotated[LowerChannel, WrapValidator(_channel_or_derived)] = Field(
        default_factory=_channel_from_data
    )


class EmailEvent(_Event):
    """An e-mail event of one recipient in one campaign. Unknown fields are ignored."""

    campaign: Annotated[str, StringConstraints(min_length=1, max_length=MAX_LABEL_CHARS)]
    recipient_id: Id
    type: Literal["sent", "delivered", "bounced", "opened", "clicked", "unsubscribed", "complained"]
    bounce_kind: Literal["hard", "soft"] | None = None
    # An open fetched by a privacy proxy (Apple MPP), not by a reader.
    machine_open: Annotated[bool, Field(strict=True)] = False


class OrderEvent(_Event):
    """A shop event of one customer. Unknown fields are ignored.

    ``amount`` is required for purchases and refunds (a refund's amount is positive, its
    type says it is money back) and needs a ``currency``. ``amount_reporting`` is the
    amount in the reporting currency, computed by ``parse`` from its rates.
    """

    customer_id: Id
    type: Literal["cart_created", "checkout_started", "purchase", "refund"]
    cart_id: OptId = None
    order_id: OptId = None
    amount: Money | None = None
    currency: Currency | None = None
    visitor_id: OptId = None
    session_id: OptId = None
    campaign: Label = None
    channel: LowerChannel | None = None
    amount_reporting: Annotated[Decimal | None, PlainValidator(_in_reporting("amount"))] = Field(
        default=None, validate_default=True
    )


class AdSpendEvent(_Event):
    """Money spent on one campaign and channel. Unknown fields are ignored.

    ``cost_reporting`` is the cost in the reporting currency, computed by ``parse``.
    """

    campaign: Annotated[str, StringConstraints(min_length=1, max_length=MAX_LABEL_CHARS)]
    channel: LowerChannel
    cost: Money
    currency: Currency
    cost_reporting: Annotated[Decimal | None, PlainValidator(_in_reporting("cost"))] = Field(
        default=None, validate_default=True
    )


class SurveyEvent(_Event):
    """One NPS answer: 0-6 detractor, 7-8 passive, 9-10 promoter. Unknown fields are ignored."""

    respondent_id: Id
    # strict: a 9.5, 9.0 or "9" is a producer bug worth seeing, not something to round.
    score: Annotated[int, Field(ge=0, le=10, strict=True)]
    campaign: Label = None


Event: TypeAlias = PageviewEvent | EmailEvent | OrderEvent | AdSpendEvent | SurveyEvent

# ---------------------------------------------------------------------------------------
# parse

_VALIDATE: Final[Mapping[str, Callable[..., Event]]] = {
    Kind.pageviews: PageviewEvent.__pydantic_validator__.validate_json,
    Kind.emails: EmailEvent.__pydantic_validator__.validate_json,
    Kind.orders: OrderEvent.__pydantic_validator__.validate_json,
    Kind.adspend: AdSpendEvent.__pydantic_validator__.validate_json,
    Kind.surveys: SurveyEvent.__pydantic_validator__.validate_json,
}


# The fields that become Prometheus label values (the configurable length bound).
_LABEL_FIELDS: Final = ("campaign", "page")


# The overloads give callers the model of the kind they pass, e.g. a PageviewEvent.
@overload
def parse(
    kind: Literal[Kind.pageviews], raw: bytes, ctx: ParseContext, now_s: float
) -> PageviewEvent | Rejection: ...
@overload
def parse(
    kind: Literal[Kind.emails], raw: bytes, ctx: ParseContext, now_s: float
) -> EmailEvent | Rejection: ...
@overload
def parse(
    kind: Literal[Kind.orders], raw: bytes, ctx: ParseContext, now_s: float
) -> OrderEvent | Rejection: ...
@overload
def parse(
    kind: Literal[Kind.adspend], raw: bytes, ctx: ParseContext, now_s: float
) -> AdSpendEvent | Rejection: ...
@overload
def parse(
    kind: Literal[Kind.surveys], raw: bytes, ctx: ParseContext, now_s: float
) -> SurveyEvent | Rejection: ...
@overload
def parse(kind: Kind, raw: bytes, ctx: ParseContext, now_s: float) -> Event | Rejection: ...


def parse(kind: Kind, raw: bytes, ctx: ParseContext, now_s: float) -> Event | Rejection:
    """Validate the value of one message of topic ``kind``; never raise."""
    try:
        size = len(raw)
    except TypeError:
        # A tombstone (null value) arrives as None.
        return Rejection(Reason.invalid_json, f"message value is {type(raw).__name__}, not bytes")
    if size > ctx.max_bytes:
        return Rejection(Reason.too_large, f"message is {size} bytes, max_bytes is {ctx.max_bytes}")
    validate = _VALIDATE.get(kind)
    if validate is None:
        return Rejection(Reason.unknown_topic, f"unknown topic kind {_preview(kind)}")
    try:
        event = validate(raw, context=ctx)
    except ValidationError as exc:
        return _rejection(exc, raw)
    except Exception as exc:
        # Not reachable by any input we know of; if a bug makes it so, one message is
        # dead-lettered with the exception's name instead of the worker crash-looping.
        return Rejection(Reason.bad_value, f"internal error {type(exc).__name__}")
    if event.ts_s > now_s + ctx.max_future_s:
        return Rejection(
            Reason.future_ts,
            f"field 'ts': {event.ts_s:.3f} is {event.ts_s - now_s:.0f} s ahead of now, "
            f"max_future_s is {ctx.max_future_s:g}",
        )
    limit = ctx.max_label_chars
    if limit < MAX_LABEL_CHARS:  # lowered by the settings: the schema checked the ceiling
        for name in _LABEL_FIELDS:
            label = getattr(event, name, None)
            if label is not None and len(label) > limit:
                return Rejection(
                    Reason.out_of_range,
                    f"field {name!r}: {len(label)} chars, labels.max_label_chars is {limit}",
                )
    if type(event) is PageviewEvent and event.type != "page_view":
        if event.type == "engagement" and event.engaged_ms is None:
            return Rejection(
                Reason.missing_field, "missing field 'engaged_ms' (required for engagement)"
            )
        if event.type == "key_event" and not event.name:
            return Rejection(Reason.missing_field, "missing field 'name' (required for key_event)")
    return event


# ---------------------------------------------------------------------------------------
# The failure path: ValidationError -> Rejection

_MAX_DETAIL: Final = 200
# Beyond a bound (#12): a too long id or label, a too large number.
_RANGE_ERRORS: Final = frozenset({"string_too_long", "less_than", "less_than_equal"})
_VALUE_ERRORS: Final = frozenset(
    {
        "string_too_short",
        "string_pattern_mismatch",
        "greater_than",
        "greater_than_equal",
        "literal_error",
        "decimal_parsing",
        "enum",
        "finite_number",
        "decimal_max_digits",
        "decimal_max_places",
        "decimal_whole_digits",
    }
)
_FIELD_REASONS: Final = {
    "ts": Reason.bad_ts,
    "score": Reason.bad_score,
    "channel": Reason.bad_channel,
}
_JSON_TYPES: Final = {
    ord("["): "an array",
    ord('"'): "a string",
    ord("n"): "null",
    ord("t"): "a boolean",
    ord("f"): "a boolean",
}


def _preview(value: Any) -> str:
    """Return a short repr of a rejected value: a detail never echoes a large payload."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()  # the JSON spelling
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _rejection(exc: ValidationError, raw: bytes) -> Rejection:
    """Translate the first error of ``exc`` into a Rejection."""
    errors = exc.errors(include_url=False, include_context=False)
    error = errors[0]
    error_type, loc, msg = error["type"], error["loc"], error["msg"]
    if error_type in Reason.__members__:
        # Raised by our own validators, whose messages are written for the detail.
        return Rejection(Reason(error_type), msg[:_MAX_DETAIL])
    if error_type in ("json_invalid", "json_type"):
        return Rejection(Reason.invalid_json, msg[:_MAX_DETAIL])
    if not loc:
        if error_type in ("model_type", "model_attributes_type", "dict_type"):
            head = raw.lstrip()[:1]
            what = _JSON_TYPES.get(ord(head), "a number") if head else "nothing"
            return Rejection(Reason.not_an_object, f"expected a JSON object, got {what}")
        return Rejection(Reason.bad_value, msg[:_MAX_DETAIL])
    name = str(loc[0])
    if error_type == "missing":
        return Rejection(Reason.missing_field, f"missing field {name!r}")
    reason = _FIELD_REASONS.get(name)
    if reason is None:
        reason = (
            Reason.out_of_range
            if error_type in _RANGE_ERRORS
            else Reason.bad_value
            if error_type in _VALUE_ERRORS
            else Reason.bad_type
        )
    elif reason is Reason.bad_ts:
        # ts is a union: for a string the datetime branch's error says what is wrong, for
        # other types the number branch's, unless it only says "not a number".
        if isinstance(error.get("input"), str):
            msg = next((e["msg"] for e in errors[1:] if e["loc"][:1] == ("ts",)), msg)
        elif error_type == "float_type":
            msg = "Input should be an RFC 3339 string or an epoch number"
    detail = f"field {name!r}: {msg}, got {_preview(error.get('input'))}"
    return Rejection(reason, detail[:_MAX_DETAIL])
