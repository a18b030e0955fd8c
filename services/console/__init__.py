"""The console: the web UI where a marketing team listens, reviews, answers and measures."""
