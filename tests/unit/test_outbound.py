"""The guarded outbound client: address checks after DNS and on every redirect, size caps."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from shared.outbound import (
    AddressPolicy,
    BlockedAddressError,
    ResponseTooLargeError,
    check_outbound_url,
    guarded_client,
)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/redirect"):
            target = self.path.split("to=", 1)[1]
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()
            return
        size = int(self.path.rsplit("/", 1)[1]) if "/bytes/" in self.path else 2
        self.send_response(200)
        if "nolength" not in self.path:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.write(b"x" * size)

    def log_message(self, *_: object) -> None:
        pass


def _serve(host: str) -> Iterator[str]:
    httpd = ThreadingHTTPServer((host, 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    yield from _serve("127.0.0.1")


@pytest.fixture(scope="module")
def other_server() -> Iterator[str]:
    """A second loopback address, to tell an allowed hop from a refused one."""
    yield from _serve("127.0.0.2")


def _get(allowed: list[str], url: str) -> httpx.Response:
    async def go() -> httpx.Response:
        async with guarded_client(allowed, max_response_bytes=1000) as client:
            response = await client.get(url)
            await response.aread()
            return response

    return asyncio.run(go())


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.5",
        "172.16.1.1",
        "192.168.0.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        "0.0.0.0",
        "fd00::1",
        "224.0.0.1",
    ],
)
def test_private_loopback_and_link_local_addresses_are_refused(address: str) -> None:
    assert not AddressPolicy().allows(ipaddress.ip_address(address))


def test_public_addresses_and_allowed_networks_pass() -> None:
    assert AddressPolicy().allows(ipaddress.ip_address("93.184.216.34"))
    assert AddressPolicy().allows(ipaddress.ip_address("2606:4700::1111"))
    assert AddressPolicy(["10.20.0.0/16"]).allows(ipaddress.ip_address("10.20.3.4"))
    assert not AddressPolicy(["10.20.0.0/16"]).allows(ipaddress.ip_address("10.21.3.4"))


def test_loopback_is_refused_by_default_and_by_name(server: str) -> None:
    with pytest.raises(BlockedAddressError):
        _get([], server + "/ok")
    with pytest.raises(BlockedAddressError):
        _get([], server.replace("127.0.0.1", "localhost") + "/ok")
    assert _get(["127.0.0.1/32"], server + "/ok").status_code == 200


def test_every_redirect_hop_is_checked(server: str, other_server: str) -> None:
    # Allowed: 127.0.0.1 only. The redirect points at 127.0.0.2, which the policy refuses.
    with pytest.raises(BlockedAddressError):
        _get(["127.0.0.1/32"], f"{server}/redirect?to={other_server}/ok")
    ok = _get(["127.0.0.0/8"], f"{server}/redirect?to={other_server}/ok")
    assert ok.status_code == 200


def test_responses_are_capped_by_header_and_by_bytes_read(server: str) -> None:
    assert len(_get(["127.0.0.1/32"], server + "/bytes/1000").content) == 1000
    with pytest.raises(ResponseTooLargeError):
        _get(["127.0.0.1/32"], server + "/bytes/1001")
    with pytest.raises(ResponseTooLargeError):
        _get(["127.0.0.1/32"], server + "/nolength/bytes/5000")


def test_other_schemes_are_refused() -> None:
    with pytest.raises((BlockedAddressError, httpx.UnsupportedProtocol)):
        _get(["127.0.0.0/8"], "file:///etc/passwd")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/", "http"),
        ("https://user:pw@example.com/", "credentials"),
        ("https:///path", "no host"),
        ("https://example.com:99999/", "port"),
    ],
)
def test_user_given_urls_are_checked_before_they_are_stored(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_outbound_url(url)


def test_https_can_be_required() -> None:
    with pytest.raises(ValueError, match="https"):
        check_outbound_url("http://example.com/", require_https=True)
    assert check_outbound_url("https://example.com/x", require_https=True)


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b::a00:5",  # NAT64 of 10.0.0.5
        "64:ff9b:1::a00:5",  # local-use NAT64
        "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::ffff:0:7f00:1",  # SIIT 127.0.0.1
        "fec0::1",  # site-local
    ],
)
def test_ipv6_forms_of_private_ipv4_addresses_are_refused(address: str) -> None:
    assert not AddressPolicy().allows(ipaddress.ip_address(address))


def test_ipv6_forms_of_public_ipv4_addresses_pass() -> None:
    assert AddressPolicy().allows(ipaddress.ip_address("64:ff9b::5db8:d822"))  # 93.184.216.34


class _Encoded(BaseHTTPRequestHandler):
    """Compressed bodies (a decompression bomb among them) and a slow drip."""

    def do_GET(self) -> None:
        if self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Length", "50")
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
            return
        size = int(self.path.rsplit("/", 1)[1])
        body = gzip.compress(b"0" * size)
        self.send_response(200)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def encoded_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Encoded)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


def _get_with(url: str, total_timeout: float = 60.0) -> httpx.Response:
    async def go() -> httpx.Response:
        async with guarded_client(
            ["127.0.0.1/32"], max_response_bytes=100_000, total_timeout=total_timeout
        ) as c:
            response = await c.get(url)
            await response.aread()
            return response

    return asyncio.run(go())


def test_the_cap_counts_what_a_compressed_body_expands_to(encoded_server: str) -> None:
    assert _get_with(encoded_server + "/gzip/100000").content == b"0" * 100_000
    with pytest.raises(ResponseTooLargeError):  # 5 MB from a body of about 5 kB
        _get_with(encoded_server + "/gzip/5000000")


def test_a_slow_drip_is_cut_at_the_total_timeout(encoded_server: str) -> None:
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        _get_with(encoded_server + "/drip", total_timeout=1.0)
    assert time.monotonic() - started < 3  # each read came within httpx's read timeout
