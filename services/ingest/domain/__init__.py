"""Pure ingest logic: no broker, database or web imports here."""
