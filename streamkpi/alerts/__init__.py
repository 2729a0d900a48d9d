"""Alerts generated from one alert config: Prometheus rules, promtool tests, Grafana files."""

from streamkpi.alerts.config import AlertConfig, kpi_thresholds, load_alert_config

__all__ = ["AlertConfig", "kpi_thresholds", "load_alert_config"]
