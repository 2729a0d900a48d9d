"""Allow ``python -m streamkpi.rules generate [--check]`` (same as ``streamkpi rules``)."""

from streamkpi.rules.cli import rules

rules()
