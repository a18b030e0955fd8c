"""W3C trace context (`traceparent`) carried from HTTP requests into events and onwards.

The contract asks every message to carry `traceparent` when one exists. A request or a consumed
message sets it for the duration of its processing; every event published meanwhile carries it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_current: ContextVar[str | None] = ContextVar("traceparent", default=None)


def valid_traceparent(value: str | None) -> str | None:
    """The value if it is a well-formed version-00 traceparent, else None."""
    if value and _TRACEPARENT.match(value) and "0" * 32 not in value:
        return value
    return None


def current_traceparent() -> str | None:
    return _current.get()


def child_traceparent(parent: str | None) -> str:
    """A new span id under the parent's trace (or a new trace), as the next hop sees it."""
    parent = valid_traceparent(parent)
    trace_id = parent.split("-")[1] if parent else secrets.token_hex(16)
    flags = parent.split("-")[3] if parent else "01"
    return f"00-{trace_id}-{secrets.token_hex(8)}-{flags}"


@contextmanager
def use_traceparent(value: str | None) -> Iterator[None]:
    token = _current.set(valid_traceparent(value))
    try:
        yield
    finally:
        _current.reset(token)
