"""Code every service shares: events, topics, settings, Kafka and MongoDB plumbing, HTTP."""

__version__ = "0.1.0"
