"""The shipped alert rules on replayed series: a promtool test file, run by real promtool.

``rules_for`` copies, verbatim from the generated rule files (``deploy/prometheus``), the
alerting rule(s) of one alert and the recording rules they read, transitively: promtool
evaluates every rule of its files at every step from time 0, and the 400 recording
rules over a week (the drift alerts' ``offset 1w``) took 8.5 minutes, the few needed ones
5 s. The expressions are the files' own text, not a re-implementation.

``input_series`` writes samples as promtool ``input_series``: a value per step, ``_``
where the exporter has no sample, and ``stale`` where a series disappears (Prometheus
marks a vanished scrape series stale at once; without it the last value would linger 5m).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from streamkpi.backtest.replay import Samples

__all__ = [
    "ALERT_FILE",
    "RULE_FILE",
    "PromtoolResult",
    "concat",
    "input_series",
    "rules_for",
    "run_promtool",
]

_DEPLOY: Final = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULE_FILE: Final = _DEPLOY / "rules" / "streamkpi-kpis.yml"
ALERT_FILE: Final = _DEPLOY / "alerts" / "streamkpi-alerts.yml"
_NAME: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def rules_for(
    alert: str, rule_file: Path = RULE_FILE, alert_file: Path = ALERT_FILE
) -> tuple[dict[str, Any], frozenset[str]]:
    """Return (a rule file with ``alert`` and what it reads, the raw metrics it needs).

    Recording rules keep their file order (a rule reads records evaluated before it in
    the same step, as in the files' groups).
    """
    recorded = [
        rule for group in yaml.safe_load(rule_file.read_text())["groups"] for rule in group["rules"]
    ]
    by_name = {rule["record"]: rule for rule in recorded}
    alerts = [
        rule
        for group in yaml.safe_load(alert_file.read_text())["groups"]
        for rule in group["rules"]
        if rule.get("alert") == alert
    ]
    if not alerts:
        raise ValueError(f"no alert {alert} in {alert_file}")
    needed: set[str] = set()
    metrics: set[str] = set()
    todo = [rule["expr"] for rule in alerts]
    while todo:
        for name in _NAME.findall(todo.pop()):
            if name in by_name and name not in needed:
                needed.add(name)
                todo.append(by_name[name]["expr"])
            elif name.startswith("streamkpi_"):
                metrics.add(name)
    groups = [
        {"name": "recording", "rules": [r for r in recorded if r["record"] in needed]},
        {"name": "alerts", "rules": alerts},
    ]
    return {"groups": groups}, frozenset(metrics)


def _value(value: float) -> str:
    return repr(value) if value != int(value) else str(int(value))


def input_series(
    samples: Samples, *, offset_steps: int = 0, metrics: frozenset[str] | None = None
) -> list[dict[str, str]]:
    """Return ``samples`` as promtool input_series, starting ``offset_steps`` steps late.

    ``metrics`` keeps only the series of those metric names.
    """
    out = []
    for name in sorted(samples.series):
        if metrics is not None and name.partition("{")[0] not in metrics:
            continue
        column = samples.series[name]
        parts: list[str] = []
        missing = offset_steps
        previous: float | None = None
        for value in column:
            if value is None:
                if previous is not None:
                    if missing:
                        parts.append(f"_x{missing}" if missing > 1 else "_")
                        missing = 0
                    parts.append("stale")
                else:
                    missing += 1
            else:
                if missing:
                    parts.append(f"_x{missing}" if missing > 1 else "_")
                    missing = 0
                parts.append(_value(value))
            previous = value
        out.append({"series": name, "values": " ".join(parts)})
    return out


def concat(first: Samples, gap_steps: int, second: Samples) -> Samples:
    """Return ``first``, ``gap_steps`` empty steps, then ``second``, as one set of samples.

    A series missing from one of them is absent there (not shifted).
    """
    out = Samples(first.start_s, first.step_s)
    out.steps = first.steps + gap_steps + second.steps
    for name in sorted({*first.series, *second.series}):
        a = first.series.get(name, [None] * first.steps)
        b = second.series.get(name, [None] * second.steps)
        out.series[name] = [*a, *([None] * gap_steps), *b]
    return out


@dataclass(frozen=True)
class PromtoolResult:
    """What ``promtool test rules`` said: passed, and its output."""

    passed: bool
    output: str

    def failure_times(self) -> list[str]:
        """Return the eval times of the failed expression tests, in output order."""
        return re.findall(r"time: ([0-9wdhms]+),", self.output)


def run_promtool(
    workdir: Path, rules: Mapping[str, Any], tests: Iterable[Mapping[str, Any]]
) -> PromtoolResult:
    """Write the rules and a test file of ``tests`` (groups) in ``workdir``; run promtool."""
    path = shutil.which("promtool")
    if path is None:
        raise FileNotFoundError(
            "promtool not found on PATH: install Debian's prometheus package "
            "(apt-get install prometheus)"
        )
    (workdir / "rules.yml").write_text(yaml.safe_dump(dict(rules), sort_keys=False))
    test_file = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        # Records first, then the alert reading them, at every step: without an order
        # promtool's is arbitrary, and an alert evaluated before the records it reads sees
        # them absent where a series just appeared (a drift "0 < last week" for one step).
        "group_eval_order": [group["name"] for group in rules["groups"]],
        "tests": list(tests),
    }
    (workdir / "test.yml").write_text(yaml.safe_dump(test_file, sort_keys=False, width=1 << 30))
    done = subprocess.run(
        [path, "test", "rules", "test.yml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return PromtoolResult(done.returncode == 0, done.stdout + done.stderr)


def duration(seconds: float) -> str:
    """Return ``seconds`` as a promtool duration (whole minutes: ``90m``)."""
    minutes = round(seconds / 60)
    return f"{minutes}m"
