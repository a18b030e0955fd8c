"""Ingest: social listening. Collects mentions, matches them to trackers, emits them once."""
