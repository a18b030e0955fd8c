"""Moderation: classifies every mention, applies rules, serves the review inbox."""
