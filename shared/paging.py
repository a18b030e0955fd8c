"""Cursor paging, the same for every list endpoint of every service.

The contract: `cursor` and `limit` (at most `MAX_PAGE`) in, `{"items", "next_cursor"}` out,
`next_cursor` null on the last page. A cursor is opaque to callers: the sort keys of the last
item of the page, so the next page is an index range read (`> keys`), never a skip.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import Query

from shared.errors import ApiError

#: Most items one page may hold (`limit` ≤ this).
MAX_PAGE = 200
#: The query parameters of a list endpoint: `limit: PageLimit = 50, cursor: PageCursor = None`.
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"items per page, ≤ {MAX_PAGE}")]
PageCursor = Annotated[
    str | None, Query(max_length=1_000, description="`next_cursor` of the page before")
]


def encode_cursor(keys: Sequence[str]) -> str:
    """An opaque `next_cursor` from the sort keys of a page's last item."""
    return base64.urlsafe_b64encode(json.dumps(list(keys)).encode()).decode()


def decode_cursor(cursor: str, count: int) -> list[str]:
    """The `count` sort keys a cursor holds; 422 `invalid_cursor` for any other text."""
    try:
        keys = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise _invalid() from exc
    if (
        not isinstance(keys, list)
        or len(keys) != count
        or not all(isinstance(k, str) for k in keys)
    ):
        raise _invalid()
    return keys


def page_of(
    found: Sequence[dict[str, Any]],
    limit: int,
    public: Callable[[dict[str, Any]], dict[str, Any]],
    keys: Callable[[dict[str, Any]], Sequence[str]] = lambda document: [document["_id"]],
) -> dict[str, Any]:
    """The contract's page from `limit + 1` documents read in key order (the extra one only
    says whether there is a next page)."""
    page = found[:limit]
    more = len(found) > limit
    return {
        "items": [public(document) for document in page],
        "next_cursor": encode_cursor(keys(page[-1])) if more and page else None,
    }


def _invalid() -> ApiError:
    return ApiError(422, "invalid_cursor", "cursor is not one this API returned")
