"""The contract's error shape: `{"error": {"code", "message", "details"}}` with a 4xx/5xx."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Raise from an endpoint to answer with the contract's error body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}
