"""Grafana dashboards generated from the KPI spec (issue 6)."""
