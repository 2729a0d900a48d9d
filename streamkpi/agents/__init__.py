"""Thin Faust agents, one module per source topic."""
