"""What every service client shares: the user's assertion on each call, errors in words."""

from __future__ import annotations

from typing import Any

import httpx

from shared.auth import ACTOR_HEADER, Actor, sign_actor


class ServiceError(Exception):
    """A service answered with an error, or could not be reached.

    `status` is the service's HTTP status (503 when unreachable); `code` and `message` come
    from the contract's error body, so a page can tell "not found" from "try again".
    """

    def __init__(self, service: str, status: int, code: str, message: str) -> None:
        super().__init__(f"{service}: {status} {code}: {message}")
        self.service = service
        self.status = status
        self.code = code
        self.message = message


class ServiceClient:
    """Calls one service's API as a user. Subclasses add one typed method per endpoint."""

    service = "service"

    def __init__(self, base_url: str, http: httpx.AsyncClient, token: str, key: str) -> None:
        self._base_url = base_url.rstrip("/")
        self._http = http
        self._token = token
        self._key = key

    def _headers(self, actor: Actor | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._token}"}
        if actor is not None:
            headers[ACTOR_HEADER] = sign_actor(actor, self._key)
        return headers

    async def request(
        self,
        method: str,
        path: str,
        actor: Actor | None,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """The decoded JSON answer (None for 204); `ServiceError` for any failure.

        `actor` None calls as the console itself (only for what no user owns, e.g. resolving
        a user's brand groups to tracker ids).
        """
        query = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        try:
            response = await self._http.request(
                method,
                f"{self._base_url}{path}",
                params=query,
                json=json,
                headers=self._headers(actor),
            )
        except httpx.HTTPError as exc:
            raise ServiceError(
                self.service, 503, "unreachable", f"{type(exc).__name__}: cannot reach it"
            ) from exc
        if response.status_code == 204:
            return None
        if response.is_error:
            code, message = "error", response.reason_phrase
            try:
                error = response.json()["error"]
                code, message = str(error["code"]), str(error["message"])
            except (ValueError, KeyError, TypeError):
                pass
            raise ServiceError(self.service, response.status_code, code, message)
        try:
            return response.json()
        except ValueError as exc:
            raise ServiceError(self.service, 502, "bad_answer", "not JSON") from exc

    async def get(self, path: str, actor: Actor | None, **params: Any) -> Any:
        return await self.request("GET", path, actor, params=params)

    async def post(self, path: str, actor: Actor | None, body: Any = None) -> Any:
        return await self.request("POST", path, actor, json=body)
