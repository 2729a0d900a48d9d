"""Allow ``python -m streamkpi``."""

from streamkpi.cli import main

main()
