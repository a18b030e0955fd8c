"""The one error the publisher's domain raises; the API turns it into the contract's body."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A request the domain refuses: `status` is the HTTP status the API answers with."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
