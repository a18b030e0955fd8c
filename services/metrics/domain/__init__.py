"""Pure metrics logic: no broker, database or web imports here."""
