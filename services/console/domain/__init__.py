"""The console's pure rules: roles on screen, periods, KPI card arithmetic."""
