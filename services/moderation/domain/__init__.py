"""Pure moderation logic: no broker, database or web imports here."""
