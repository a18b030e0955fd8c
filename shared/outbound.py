"""The one HTTP client for calls to addresses that users or remote servers choose.

A channel's API base, a feed, a WebSub hub, an engagement URL: each can be pointed, by a
user or by a redirect, at the platform's own network (the metadata service at 169.254.169.254,
MongoDB, an admin port on loopback). The guarded client checks the address it actually
connects to, after DNS resolution and on every redirect, so neither a hostname that
resolves to 10.0.0.5 nor a `302 Location: http://127.0.0.1/` gets through; and it caps the
size of what it reads back, so a hostile server cannot fill the memory.

Private, loopback and link-local addresses are refused unless they fall in
`SMM_OUTBOUND_ALLOWED_NETWORKS` (the tests and the local stack allow loopback there).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from httpcore._backends.auto import AutoBackend

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Most bytes read from one response unless the caller says otherwise (feeds, API answers).
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
#: Redirects followed at most (each hop is checked again).
MAX_REDIRECTS = 5


class BlockedAddressError(httpx.ConnectError):
    """The host resolves to an address outbound calls may not reach."""


class ResponseTooLargeError(httpx.ReadError):
    """The response is larger than the client reads."""


class AddressPolicy:
    """Which addresses an outbound connection may reach: public ones, and the allowed networks."""

    def __init__(self, allowed_networks: Iterable[str] = ()) -> None:
        self.allowed: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(network, strict=False) for network in allowed_networks
        )

    def allows(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.allowed):
            return True
        return address.is_global and not address.is_multicast


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, checks every address, and connects to a checked one
    (so a DNS answer that changes between check and connect cannot slip through)."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = AutoBackend()

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        literal = _literal_address(host)
        if literal is not None:
            return [literal]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from exc
        return [ipaddress.ip_address(info[4][0]) for info in infos]

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port)
        blocked = [address for address in addresses if not self._policy.allows(address)]
        if blocked or not addresses:
            raise BlockedAddressError(
                f"{host} resolves to {blocked[0] if blocked else 'nothing'}, which outbound "
                "calls may not reach (private, loopback or link-local; see "
                "SMM_OUTBOUND_ALLOWED_NETWORKS)"
            )
        return await self._inner.connect_tcp(
            str(addresses[0]),
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddressError("outbound calls do not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _CappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, limit: int, url: httpx.URL) -> None:
        self._inner = inner
        self._limit = limit
        self._url = url

    async def __aiter__(self) -> AsyncIterator[bytes]:
        read = 0
        async for chunk in self._inner:
            read += len(chunk)
            if read > self._limit:
                raise ResponseTooLargeError(
                    f"{self._url.host}: response larger than {self._limit} bytes"
                )
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx transport with the address check on every connection and a response size cap."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        limits: httpx.Limits | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(limits=limits, trust_env=False)
        # Same pool as httpx builds, on the guarded network backend (no proxy from the
        # environment: a proxy would resolve and connect on our behalf, unchecked).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(policy),
        )
        self._max_response_bytes = max_response_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme not in ("http", "https"):
            raise BlockedAddressError(f"scheme {request.url.scheme!r} is not allowed")
        response = await super().handle_async_request(request)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_response_bytes:
            await response.aclose()
            raise ResponseTooLargeError(
                f"{request.url.host}: response of {declared} bytes is larger than "
                f"{self._max_response_bytes}"
            )
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _CappedStream(response.stream, self._max_response_bytes, request.url)
        return response


def guarded_client(
    allowed_networks: Sequence[str],
    *,
    timeout: httpx.Timeout | float = 20.0,
    headers: dict[str, str] | None = None,
    max_connections: int = 100,
    follow_redirects: bool = True,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` whose every connection (redirects included) is address-checked."""
    transport = GuardedTransport(
        AddressPolicy(allowed_networks),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=min(max_connections, 20)
        ),
        max_response_bytes=max_response_bytes,
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        headers=headers,
        follow_redirects=follow_redirects,
        max_redirects=MAX_REDIRECTS,
        trust_env=False,
    )


def check_outbound_url(url: str, *, require_https: bool = False) -> str:
    """Validate a URL a user gives for outbound calls, before it is stored: http(s) only, a
    host, no credentials in it. Raises ValueError with the reason. (The address itself is
    checked at connect time, since DNS can change after this.)"""
    parts = urlsplit(url)
    if parts.scheme not in (("https",) if require_https else ("http", "https")):
        raise ValueError(
            "the URL must start with https://" if require_https else "the URL must be http(s)"
        )
    if not parts.hostname:
        raise ValueError("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the URL must not carry credentials")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError as exc:
        raise ValueError(f"the URL's port is invalid: {exc}") from exc
    return url
