"""KPI definitions as data, and the pure engine that counts their components."""
