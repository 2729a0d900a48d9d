"""Prometheus rules generated from the KPI spec (``streamkpi rules generate``)."""
