"""The one cursor paging of every list endpoint."""

from __future__ import annotations

import pytest

from shared.errors import ApiError
from shared.paging import decode_cursor, encode_cursor, page_of


def test_a_cursor_carries_the_sort_keys_of_the_last_item() -> None:
    assert decode_cursor(encode_cursor(["2026-12-03T10:00:00+00:00", "p-1"]), 2) == [
        "2026-12-03T10:00:00+00:00",
        "p-1",
    ]


@pytest.mark.parametrize("cursor", ["bm9wZQ==", "!!!", encode_cursor(["a", "b"]), "W10=", "WzFd"])
def test_anything_but_a_cursor_of_the_right_shape_is_a_422(cursor: str) -> None:
    with pytest.raises(ApiError) as refused:
        decode_cursor(cursor, 1)
    assert refused.value.status == 422
    assert refused.value.code == "invalid_cursor"


def test_a_page_says_whether_another_follows() -> None:
    documents = [{"_id": f"t{n}"} for n in range(3)]
    full = page_of(documents, 2, lambda d: {"id": d["_id"]})
    assert full["items"] == [{"id": "t0"}, {"id": "t1"}]
    assert decode_cursor(full["next_cursor"], 1) == ["t1"]
    last = page_of(documents[:2], 2, lambda d: {"id": d["_id"]})
    assert last["next_cursor"] is None
    assert page_of([], 2, lambda d: d) == {"items": [], "next_cursor": None}
