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
import zlib
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
#: Longest one request may take, headers and body together, unless the caller says otherwise:
#: httpx's timeouts bound each read, so a server sending a byte a second would never time out.
DEFAULT_TOTAL_TIMEOUT = 60.0
#: The content codings the client asks for and decodes itself, counting what they expand to.
ACCEPTED_ENCODINGS = "gzip, deflate"

_IPV6_TRANSLATED = (
    # (prefix, offset of the embedded IPv4 in bits from the left): NAT64 well-known and
    # local-use prefixes, IPv4-compatible and SIIT-translated forms, 6to4.
    (ipaddress.IPv6Network("64:ff9b::/96"), 96),
    (ipaddress.IPv6Network("64:ff9b:1::/48"), 96),
    (ipaddress.IPv6Network("::ffff:0:0:0/96"), 96),
    (ipaddress.IPv6Network("::/96"), 96),
    (ipaddress.IPv6Network("2002::/16"), 16),
)


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
        if any(address in network for network in self.allowed):
            return True
        if isinstance(address, ipaddress.IPv6Address):
            embedded = embedded_ipv4(address)
            if embedded is not None:  # a gateway would take it there: judge where it goes
                return self.allows(embedded)
            if address.is_site_local:
                return False
        return address.is_global and not address.is_multicast


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4, ...), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.teredo is not None:
        return address.teredo[1]
    for network, offset in _IPV6_TRANSLATED:
        if address in network:
            bits = int(address) >> (128 - offset - 32) & 0xFFFFFFFF
            return ipaddress.IPv4Address(bits)
    return None


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
    """The body as the caller will see it: decoded here (so the cap counts what a compressed
    body expands to, not its compressed size), capped, and done by the request's deadline."""

    def __init__(
        self,
        inner: httpx.AsyncByteStream,
        limit: int,
        url: httpx.URL,
        deadline: float,
        encoding: str | None,
    ) -> None:
        self._inner = inner
        self._limit = limit
        self._url = url
        self._deadline = deadline
        self._decoder = _decoder(encoding)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        chunks = aiter(self._inner)
        produced = 0
        while True:
            try:
                async with asyncio.timeout_at(self._deadline):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise httpx.ReadTimeout(
                    f"{self._url.host}: response not complete in time"
                ) from None
            for part in self._decoded(chunk, self._limit - produced + 1):
                produced += len(part)
                if produced > self._limit:
                    raise ResponseTooLargeError(
                        f"{self._url.host}: response larger than {self._limit} bytes"
                    )
                yield part
            if loop.time() > self._deadline:
                raise httpx.ReadTimeout(f"{self._url.host}: response not complete in time")
        if self._decoder is not None:
            tail = self._decoder.flush()
            if produced + len(tail) > self._limit:
                raise ResponseTooLargeError(
                    f"{self._url.host}: response larger than {self._limit} bytes"
                )
            if tail:
                yield tail

    def _decoded(self, chunk: bytes, room: int) -> list[bytes]:
        """`chunk` decoded, at most `room` bytes of it (past that the response is too large)."""
        if self._decoder is None:
            return [chunk]
        parts: list[bytes] = []
        data = chunk
        while data:
            try:
                part = self._decoder.decompress(data, max(room, 1))
            except zlib.error as exc:
                raise httpx.DecodingError(f"{self._url.host}: bad compressed body: {exc}") from exc
            parts.append(part)
            room -= len(part)
            data = self._decoder.unconsumed_tail
            if data and room <= 0:
                raise ResponseTooLargeError(
                    f"{self._url.host}: response larger than {self._limit} bytes"
                )
        return parts

    async def aclose(self) -> None:
        await self._inner.aclose()


def _decoder(encoding: str | None) -> Any:
    """A zlib decompressor for the response's one content coding (None: not encoded)."""
    if encoding is None:
        return None
    if encoding == "gzip":
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    return zlib.decompressobj(zlib.MAX_WBITS | 32)  # deflate: zlib-wrapped (or gzip)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx transport with the address check on every connection and a response size cap."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        limits: httpx.Limits | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
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
        self._total_timeout = total_timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme not in ("http", "https"):
            raise BlockedAddressError(f"scheme {request.url.scheme!r} is not allowed")
        request.headers["Accept-Encoding"] = ACCEPTED_ENCODINGS
        deadline = asyncio.get_running_loop().time() + self._total_timeout
        try:
            async with asyncio.timeout_at(deadline):
                response = await super().handle_async_request(request)
        except TimeoutError:
            raise httpx.ReadTimeout(f"{request.url.host}: no answer in time") from None
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", "deflate"):
            await response.aclose()
            raise httpx.DecodingError(f"{request.url.host}: content coding {encoding!r} refused")
        declared = response.headers.get("content-length", "")
        if (
            encoding == "identity"
            and declared.isdigit()
            and int(declared) > self._max_response_bytes
        ):
            await response.aclose()
            raise ResponseTooLargeError(
                f"{request.url.host}: response of {declared} bytes is larger than "
                f"{self._max_response_bytes}"
            )
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _CappedStream(
            response.stream,
            self._max_response_bytes,
            request.url,
            deadline,
            None if encoding == "identity" else encoding,
        )
        # Decoded here: httpx must not decode again (nor trust the encoded length).
        for header in ("content-encoding", "content-length"):
            if header in response.headers:
                del response.headers[header]
        return response


def guarded_client(
    allowed_networks: Sequence[str],
    *,
    timeout: httpx.Timeout | float = 20.0,
    headers: dict[str, str] | None = None,
    max_connections: int = 100,
    follow_redirects: bool = True,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` whose every connection (redirects included) is address-checked,
    whose every response is capped (decoded size) and done within `total_timeout`."""
    transport = GuardedTransport(
        AddressPolicy(allowed_networks),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=min(max_connections, 20)
        ),
        max_response_bytes=max_response_bytes,
        total_timeout=total_timeout,
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
