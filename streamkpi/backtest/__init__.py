"""Backtests: replay generated traffic through the engine and the shipped rules (promtool)."""
