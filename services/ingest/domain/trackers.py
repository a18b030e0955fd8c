"""A tracker: a brand (or competitor, or campaign) and the query that finds its mentions."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from services.ingest.domain.query import QueryError, parse_query
from shared.events import Identifier, Model

TrackerId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
]
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]


#: The validation error type of a query that does not parse (its context has the position).
INVALID_QUERY = "invalid_query"


class TrackerFields(Model):
    """What a client sends to create or replace a tracker."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    query: Annotated[str, StringConstraints(min_length=1, max_length=2_000)]
    languages: list[LanguageCode] = Field(default_factory=list, max_length=20)
    #: Trackers of one group are compared with each other (share of voice).
    group: Identifier | None = None

    @field_validator("languages")
    @classmethod
    def _distinct(cls, languages: list[str]) -> list[str]:
        return sorted(set(languages))

    @field_validator("query")
    @classmethod
    def _query_parses(cls, query: str) -> str:
        try:
            parse_query(query)
        except QueryError as exc:
            raise PydanticCustomError(
                INVALID_QUERY,
                "query does not parse at position {position}: {reason}",
                {"position": exc.position, "reason": exc.reason},
            ) from exc
        return query


class Tracker(TrackerFields):
    id: TrackerId
