"""Metrics: reach, engagement, sentiment and response KPIs; Prometheus and KPI events."""
