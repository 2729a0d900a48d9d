"""Committed generated files: write them, or check that the committed ones are current.

Shared by ``streamkpi rules generate``, ``streamkpi dashboards generate`` and the
Kubernetes PrometheusRule writer: each renders text, then writes it or, with ``--check``,
prints a diff and reports the file stale.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = ["alerts_option", "check_option", "unified_diff", "write_or_check"]

F = TypeVar("F", bound=Callable[..., Any])

# The options the generate commands share.
check_option = click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 and print a diff if a committed file differs from the spec.",
)


def alerts_option(purpose: str) -> Callable[[F], F]:
    """Return the --alerts FILE option (env STREAMKPI_ALERTS_FILE); ``purpose`` for its help."""
    return click.option(
        "--alerts",
        "alerts_file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="STREAMKPI_ALERTS_FILE",
        default=None,
        show_default="the packaged streamkpi/alerts/default.yml",
        help=f"{purpose} [env STREAMKPI_ALERTS_FILE].",
    )


def unified_diff(path: Path, old: str | None, new: str) -> str:
    """Return the diff from the committed text ``old`` (None: missing) to ``new``."""
    lines = difflib.unified_diff(
        [] if old is None else old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"{path} (committed)" if old is not None else "/dev/null",
        tofile=f"{path} (generated)",
    )
    return "".join(lines)


def write_or_check(files: Mapping[Path, str], *, check: bool) -> list[Path]:
    """Write each changed file (with ``check``: print its diff instead); return the stale ones.

    Progress goes to stderr, one line per file; diffs to stdout.
    """
    stale: list[Path] = []
    for path, text in files.items():
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        if old == text:
            click.echo(f"streamkpi: {path} is up to date", err=True)
            continue
        if check:
            stale.append(path)
            click.echo(unified_diff(path, old, text), nl=False)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        click.echo(f"streamkpi: wrote {path}", err=True)
    return stale
