"""post_json (callback delivery) against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from openmj.net import DeliveryResult, NetPolicy, guard, post_json
from tests.net.net_loopback import LoopbackServer

DEV = NetPolicy(allow_private=True)
STRICT = NetPolicy()
BODY = b'{"id":"task-unified-1-abcdefgh","status":"completed"}'


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer().start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def clear_log(server: LoopbackServer) -> None:
    server.log.clear()


def post(url: str, policy: NetPolicy = DEV, timeout: float = 5.0, **kw: object) -> DeliveryResult:
    headers = {"X-Openmj-Signature": "t=1,v1=abc"}
    return asyncio.run(post_json(url, BODY, headers, policy, timeout=timeout, **kw))  # type: ignore[arg-type]


def test_2xx_is_delivered(server: LoopbackServer) -> None:
    result = post(server.url("/hook"))
    assert (result.ok, result.status, result.error, result.code) == (True, 200, None, None)
    assert result.elapsed > 0
    seen = server.log[0]
    assert (seen.method, seen.path, seen.body) == ("POST", "/hook", BODY)
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["X-Openmj-Signature"] == "t=1,v1=abc"
    assert seen.headers["User-Agent"].startswith("openmj/")


def test_any_2xx_is_ok(server: LoopbackServer) -> None:
    assert post(server.url("/hook-204")).ok
    assert post(server.url("/status?code=202")).status == 202


def test_caller_content_type_wins(server: LoopbackServer) -> None:
    asyncio.run(post_json(server.url("/hook"), BODY, {"Content-Type": "application/x"}, DEV, timeout=5))
    assert server.log[0].headers["Content-Type"] == "application/x"


@pytest.mark.parametrize("status", [400, 404, 500, 503])
def test_error_status_is_not_ok(server: LoopbackServer, status: int) -> None:
    result = post(server.url(f"/status?code={status}"))
    assert (result.ok, result.status, result.code) == (False, status, "http_error")
    assert str(status) in (result.error or "")


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_not_followed(server: LoopbackServer, status: int) -> None:
    result = post(server.url(f"/redirect-to?status={status}&url=/hook"))
    assert (result.ok, result.status, result.code) == (False, status, "redirect_not_followed")
    assert server.paths() == [f"/redirect-to?status={status}&url=/hook"]


def test_redirect_with_odd_location_is_still_just_a_redirect(server: LoopbackServer) -> None:
    result = post(server.url("/redirect-to?url=data:text/plain,x"))
    assert (result.ok, result.status, result.code) == (False, 302, "redirect_not_followed")


def test_timeout(server: LoopbackServer) -> None:
    result = post(server.url("/hook-slow"), timeout=0.5)
    assert (result.ok, result.status, result.code) == (False, None, "timeout")
    # ended by the 0.5 s limit, long before the server's answer at 3 s (room for a loaded machine)
    assert 0.4 < result.elapsed < 2.5


def test_trickling_response_times_out_in_total(server: LoopbackServer) -> None:
    # each byte arrives well within any per-read timeout; only the total limit stops it
    result = post(server.url("/hook-trickle"), timeout=0.5)
    assert (result.ok, result.code) == (False, "timeout")
    assert result.elapsed < 2.5  # the whole answer would take over 5 s to trickle in


def test_connection_refused_does_not_raise() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        result = post(f"http://127.0.0.1:{s.getsockname()[1]}/hook")
    assert (result.ok, result.status, result.code) == (False, None, "connection_failed")
    assert result.error


def test_https_required_without_allow_private(server: LoopbackServer) -> None:
    result = post("http://example.com/hook", STRICT)
    assert (result.ok, result.code) == (False, "https_required")
    # allow_private lifts it: plain http to loopback works in development
    assert post(server.url("/hook"), DEV).ok
    # https_only=False is for callers that allow http (the address rules still apply)
    assert post(server.url("/hook"), STRICT, https_only=False).code == "blocked_address"


def test_url_length_limit(server: LoopbackServer) -> None:
    base = server.url("/hook?pad=")
    assert post(base + "a" * (2048 - len(base))).ok
    result = post(base + "a" * (2049 - len(base)))
    assert (result.ok, result.code) == (False, "url_too_long")
    assert post(base + "a" * (3000 - len(base)), max_length=4096).ok
    assert len(server.log) == 2


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "[::1]", "10.0.0.1", "169.254.169.254", "2130706433", "0.0.0.0",
     "[::ffff:127.0.0.1]", "192.168.1.1", "100.64.0.1", "[fe80::1]"],
)  # fmt: skip
def test_blocked_callback_addresses_are_never_contacted(server: LoopbackServer, host: str) -> None:
    for scheme in ("https", "http"):
        url = f"{scheme}://{host}:{server.port}/hook"
        result = post(url, STRICT, timeout=2.0, https_only=False)
        assert (result.ok, result.code) == (False, "blocked_address"), result
    assert server.log == []


def test_address_checked_at_delivery(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that passed the static check at submit but now resolves to a private address."""

    async def dns(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    monkeypatch.setattr(guard, "_getaddrinfo", dns)
    result = post(f"https://hooks.example.com:{server.port}/hook", STRICT)
    assert (result.ok, result.code) == (False, "blocked_address")
    assert server.log == []


def test_https_delivery(tls_server: tuple[LoopbackServer, Path]) -> None:
    srv, ca = tls_server
    srv.log.clear()
    ok = post(srv.url("/hook", "localhost"), NetPolicy(allow_private=True, ca_file=str(ca)))
    assert (ok.ok, ok.status) == (True, 200)
    assert srv.log[-1].body == BODY
    assert srv.sni[-1] == "localhost"
    untrusted = post(srv.url("/hook", "localhost"), DEV)  # certificate from an unknown CA
    assert (untrusted.ok, untrusted.code) == (False, "connection_failed")
    assert len(srv.log) == 1
