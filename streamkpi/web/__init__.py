"""The live web page: KPIs, trends, alerts and pipeline health at ``/`` (#16)."""
