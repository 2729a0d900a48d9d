"""Prometheus export: pipeline counters and scrape-time collectors over the tables."""
