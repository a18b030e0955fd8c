"""Pure publisher logic: no broker, database or web imports here."""
