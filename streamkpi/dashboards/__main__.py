"""Allow ``python -m streamkpi.dashboards [--check]`` (= ``streamkpi dashboards generate``)."""

from streamkpi.dashboards.cli import main

main()
