"""Finding classified mentions: the filters of `GET /v1/mentions` and the words of a text.

Free text is matched by words, not by a `$text` index: SecantusDB (the local server) has no
text indexes, and a MongoDB text index cannot share a compound index with the brand and the
time order. Each stored mention carries `words`, the distinct normalised words of its text
(bounded); `q` is split the same way and every word must be present (`$all`). The query runs
in the brand's range of the `newest_by_tracker` index, newest first, and the same documents
and query run unchanged on a MongoDB replica set (where a multikey index on `words` may be
added should searches over long periods become common: the planner would pick it).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Self

from pydantic import Field, StringConstraints, model_validator

from shared.events import (
    Identifier,
    Intent,
    Model,
    Platform,
    Priority,
    RoutingAction,
    Sentiment,
    UtcDatetime,
)

#: At most this many distinct words of a text are indexed (the first ones): an index entry
#: per word is written with every mention, so a 40,000-character text must not cost 5,000.
MAX_WORDS = 120
#: Longer "words" are links, hashes or noise nobody searches for.
MAX_WORD_LENGTH = 40
#: Words of a query; more narrow nothing a person types.
MAX_QUERY_WORDS = 8

Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
#: A classification label as the classifiers and rules write them (`toxic`, `spam`, `link`).
Label = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_:.-]{0,63}$")]
SearchText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

_WORD = re.compile(r"\w+")


def words_of(text: str, limit: int = MAX_WORDS) -> list[str]:
    """The distinct words of a text, in order: NFKC, case-folded, accents kept ("grüße" and
    "GRÜSSE" are one word), of 2 to `MAX_WORD_LENGTH` characters."""
    seen: dict[str, None] = {}
    for match in _WORD.finditer(unicodedata.normalize("NFKC", text).casefold()):
        word = match.group()
        if 2 <= len(word) <= MAX_WORD_LENGTH:
            seen.setdefault(word, None)
        if len(seen) >= limit:
            break
    return list(seen)


class QueryError(ValueError):
    """A filter that cannot be served (the API answers 422 with this reason)."""


class MentionFilter(Model):
    """What `GET /v1/mentions` may be asked: closed enums, checked ids, bounded text."""

    tracker_id: Identifier | None = None
    platform: Platform | None = None
    #: One author's mentions (with `platform`: author ids are unique per network only).
    author_id: Identifier | None = None
    sentiment: Sentiment | None = None
    language: Language | None = None
    intent: Intent | None = None
    label: Label | None = None
    action: RoutingAction | None = None
    priority: Priority | None = None
    created_from: UtcDatetime | None = Field(default=None, alias="from")
    created_to: UtcDatetime | None = Field(default=None, alias="to")
    q: SearchText | None = None

    @model_validator(mode="after")
    def _sensible(self) -> Self:
        if self.created_from and self.created_to and self.created_from >= self.created_to:
            raise ValueError("'from' must be before 'to'")
        if self.q is not None:
            words = self.query_words()
            if not words:
                raise ValueError("q has no word of 2 or more letters or digits to search for")
            if len(words) > MAX_QUERY_WORDS:
                raise ValueError(f"q may have {MAX_QUERY_WORDS} words at most")
        return self

    def query_words(self) -> list[str]:
        """The words every found mention's text must contain."""
        return words_of(self.q, limit=MAX_QUERY_WORDS + 1) if self.q else []
