"""The shipped Alertmanager config, re-targeted at one webhook (the demo, the tests).

``deploy/alertmanager/alertmanager.yml`` pages through PagerDuty and Slack with secrets
from files. Where those are absent (``streamkpi demo``, the end-to-end test) the same
routes, grouping and inhibition are kept and only each receiver's target becomes a webhook,
so what arrives there is what the pager and chat would have got.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

__all__ = ["ALERTMANAGER_FILE", "load_alertmanager_config", "with_webhook_receivers"]

ALERTMANAGER_FILE: Final = (
    Path(__file__).resolve().parents[2] / "deploy" / "alertmanager" / "alertmanager.yml"
)


def load_alertmanager_config(path: Path = ALERTMANAGER_FILE) -> dict[str, Any]:
    """Return the Alertmanager config at ``path`` as a mapping."""
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(config, dict) or not isinstance(config.get("receivers"), list):
        raise ValueError(f"{path}: not an Alertmanager config with receivers")
    return config


def with_webhook_receivers(
    config: Mapping[str, Any], url: str, *, group_wait: str | None = None
) -> dict[str, Any]:
    """Return ``config`` with every receiver a webhook to ``url`` (resolved alerts too).

    Receiver names, routes, grouping and inhibition stay; the ``global`` section (chat and
    pager endpoints) goes. ``group_wait`` also sets the group interval (tests: seconds).
    """
    out = copy.deepcopy(dict(config))
    out["global"] = {"resolve_timeout": "5m"}
    if group_wait is not None:
        out["route"].update(group_wait=group_wait, group_interval=group_wait, repeat_interval="1h")
    out["receivers"] = [
        {"name": receiver["name"], "webhook_configs": [{"url": url, "send_resolved": True}]}
        for receiver in config["receivers"]
    ]
    return out
