"""MongoDB collections of the ingest service and their indexes."""

from __future__ import annotations

from pymongo import IndexModel

#: Collection → indexes, created at start by the runtime.
INDEXES: dict[str, list[IndexModel]] = {}
