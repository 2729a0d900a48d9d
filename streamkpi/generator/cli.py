"""``streamkpi generate``: live marketing traffic to Kafka, with incidents on demand."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import click

from streamkpi.config import ConfigError, Settings, load_settings
from streamkpi.generator.incidents import Incident, IncidentError, parse_duration_s, parse_incident

__all__ = ["BACKFILL", "DURATION", "INCIDENT", "STEADY", "generate"]

EXIT_USAGE = 2


class _IncidentType(click.ParamType):
    name = "INCIDENT"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> Incident:
        if isinstance(value, Incident):
            return value
        try:
            return parse_incident(str(value))
        except IncidentError as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)


class _DurationType(click.ParamType):
    name = "DURATION"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        try:
            seconds = parse_duration_s(str(value))
        except IncidentError as exc:
            self.fail(str(exc), param, ctx)
        if seconds <= 0:
            self.fail(f"{value!r}: must be positive", param, ctx)
        return seconds


STEADY = "steady"


class _BackfillType(_DurationType):
    name = "DURATION|steady"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, str) and value.strip().lower() == STEADY:
            from streamkpi.generator.live import steady_backfill_s

            return float(steady_backfill_s())
        return super().convert(value, param, ctx)


INCIDENT = _IncidentType()
DURATION = _DurationType()
BACKFILL = _BackfillType()

_EPILOG = """\b
Incidents (--incident, repeatable): KIND[:campaign=NAME][:at=+DURATION][:for=DURATION][:severity=S]
  (landing-broken also takes page=PATH, ad-overspend factor=F)
  deliverability-drop  delivered e-mails bounce instead; deliverability, opens, clicks fall
                       (default severity 0.5: half the e-mails of the campaign bounce)
  conversion-drop      key events and purchases of the campaign's visits are lost; conversion
                       rate, purchases, revenue and ROAS fall (default severity 0.8)
  traffic-stop         every event of the campaign stops, or of the whole stream when no
                       campaign is given (default severity 1)
  checkout-broken      purchases of the campaign's visits stop: carts are abandoned, revenue,
                       conversion rate and ROAS fall (default severity 1)
  landing-broken       visits landing on page= (or from the campaign) leave after the landing
                       hit: bounce and landing bounce rates rise (default severity 1)
  ad-overspend         the campaign's ad spend is multiplied by factor= (default 5): CPA rises,
                       ROAS falls
  nps-drop             survey answers fall to detractor scores: NPS falls (default severity 0.5)
  at= is the time after the start (default +0), for= how long (default: to the end);
  durations need a unit: 90s, 5m, 1h30m, 2d. Campaigns: spring_sale, black_friday, brand_search,
  retargeting_q4, influencer_x, webinar_ai (e-mails: spring_sale, black_friday, webinar_ai).

\b
Examples:
  streamkpi generate --rate 200
  streamkpi generate --rate 50 --duration 30m --seed 7
  streamkpi generate --incident deliverability-drop:campaign=spring_sale:at=+5m:for=10m
  streamkpi generate --incident conversion-drop:campaign=brand_search:at=+2m:severity=0.9 \\
      --incident traffic-stop:at=+20m:for=5m
"""


@click.command(
    short_help="Produce live marketing traffic to Kafka (with incidents).",
    epilog=_EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True, max=1_000_000),
    default=100.0,
    show_default=True,
    help="Events per second, mean over a day (the daily rhythm moves it by --daily-swing).",
)
@click.option(
    "--duration",
    type=DURATION,
    help="How long to run, e.g. 90s, 10m, 2h [default: until Ctrl-C].",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed.")
@click.option(
    "--incident",
    "incidents",
    type=INCIDENT,
    multiple=True,
    help="Inject an incident (repeatable); syntax below.",
)
@click.option(
    "--daily-swing",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.3,
    show_default=True,
    help="Daily rhythm: the rate peaks at (1 + swing) x rate at 20:00 UTC, is lowest at 08:00.",
)
@click.option(
    "--invalid-rate",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="Share of events followed by a malformed message (dead-lettered by the worker).",
)
@click.option(
    "--backfill",
    type=BACKFILL,
    default=None,
    help="First produce this much traffic from before the start, in bulk and in event-time "
    "order (e.g. 4m), so windows are full from the start; 'steady' (2h6m): enough that "
    "every KPI of the 5m and 1h windows is at its steady state (the longest visit -> "
    "purchase delay + 1h). A worker that has already seen newer events, or idled 30s, "
    "counts only the last allowed_lateness_s (5m) of it; the rest is late.",
)
@click.option("--bootstrap-servers", metavar="HOST:PORT[,...]", help="Kafka bootstrap servers.")
@click.option(
    "--create-topics/--no-create-topics",
    default=True,
    show_default=True,
    help="Create missing input topics first.",
)
@click.option(
    "--progress-every",
    type=DURATION,
    default="10s",
    show_default=True,
    help="How often to print the progress line (stderr).",
)
@click.pass_context
def generate(
    ctx: click.Context,
    rate: float,
    duration: float | None,
    seed: int,
    incidents: tuple[Incident, ...],
    daily_swing: float,
    invalid_rate: float,
    backfill: float | None,
    bootstrap_servers: str | None,
    create_topics: bool,
    progress_every: float,
) -> None:
    """Produce realistic marketing traffic to Kafka, event time = now, at --rate events/s.

    Six campaigns with their own funnels (visit, engagement, cart, purchase) and channels,
    untagged organic/direct/social/referral visits, new and returning visitors and
    customers, e-mail campaigns (sent, delivered or bounced, opened, clicked), ad spend per
    campaign and channel every minute, NPS answers. It is the test generator's simulation
    (streamkpi.generator), run live: the same seed gives the same stream. Prints a
    progress line (rate, totals per topic, incidents) every --progress-every; stop with
    Ctrl-C.
    """
    from streamkpi.generator.live import LiveConfig
    from streamkpi.generator.produce import produce_live
    from streamkpi.topics import TopicsError, ensure_topics

    settings = _load(ctx, bootstrap_servers)
    try:
        config = LiveConfig(
            rate=rate,
            seed=seed,
            partitions=settings.topic_partitions,
            daily_swing=daily_swing,
            incidents=incidents,
            invalid_rate=invalid_rate,
            backfill_s=backfill or 0.0,
        )
    except IncidentError as exc:
        raise click.BadParameter(str(exc), param_hint="'--incident'") from None

    def say(message: str) -> None:
        click.echo(f"generate: {message}", err=True)

    async def main() -> None:
        if create_topics:
            await ensure_topics(settings, progress=say)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        say(
            f"producing {rate:g} events/s (daily mean) to {settings.bootstrap_servers}, "
            f"seed {seed}" + (f", for {duration:g}s" if duration else ", until Ctrl-C")
        )
        for incident in incidents:
            say(f"incident {incident.describe()}")
        if config.backfill_s > settings.allowed_lateness_s:
            say(
                f"note: the backfill ({config.backfill_s:g}s) is longer than "
                f"allowed_lateness_s ({settings.allowed_lateness_s}s): only a worker that "
                "has not yet seen newer events (fresh topics) counts all of it"
            )
        await produce_live(
            settings,
            config,
            duration_s=duration,
            stop=stop,
            report=say,
            report_every_s=progress_every,
        )

    try:
        asyncio.run(main())
    except TopicsError as exc:
        click.echo(f"streamkpi: error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # aiokafka's connection errors have no common base
        click.echo(
            f"streamkpi: error: producing to {settings.bootstrap_servers} failed: {exc!r}",
            err=True,
        )
        sys.exit(1)


def _load(ctx: click.Context, bootstrap_servers: str | None) -> Settings:
    root = ctx.find_root()
    config_file: Path | None = root.obj.get("config_file") if root.obj else None
    overrides = {"bootstrap_servers": bootstrap_servers} if bootstrap_servers else {}
    try:
        return load_settings(config_file, **overrides)
    except ConfigError as exc:
        click.echo(f"streamkpi: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
