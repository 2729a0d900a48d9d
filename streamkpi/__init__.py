"""streamkpi: real-time marketing KPIs from Kafka events, exported to Prometheus."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("streamkpi")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
