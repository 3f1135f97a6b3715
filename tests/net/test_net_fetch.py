"""fetch_image / fetch_bytes against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from openmj.net import (
    FETCH_ERROR_KINDS,
    ImageFetchError,
    NetPolicy,
    decode_image,
    fetch_bytes,
    fetch_image,
    guard,
)
from tests.net.net_loopback import (
    BIG,
    GIF,
    JPEG,
    PNG,
    LoopbackServer,
)

DEV = NetPolicy(allow_private=True, timeout=5.0)  # loopback reachable: exercises everything else
STRICT = NetPolicy(timeout=2.0)  # a guard failure would show as a timeout, not a pass
# Production rules, but the test server's one address is trusted: lets redirects to OTHER
# loopback addresses (127.0.0.2, ::1, localhost) be checked for real, hop by hop.
ONE_HOST = NetPolicy(allowed_networks=("127.0.0.1/32",), timeout=5.0)


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer().start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def clear_log(server: LoopbackServer) -> None:
    server.log.clear()


def fetch(url: str, policy: NetPolicy = DEV) -> Image.Image:
    return asyncio.run(fetch_image(url, policy))


def failure(url: str, policy: NetPolicy = DEV) -> ImageFetchError:
    with pytest.raises(ImageFetchError) as info:
        asyncio.run(fetch_image(url, policy))
    assert info.value.code in FETCH_ERROR_KINDS
    return info.value


# --- success ----------------------------------------------------------------------------------


def test_png(server: LoopbackServer) -> None:
    im = fetch(server.url("/png"))
    assert (im.size, im.mode) == ((64, 48), "RGB")
    assert im.getpixel((10, 10)) == (200, 30, 40)
    assert server.log[0].headers["Host"] == f"127.0.0.1:{server.port}"


def test_png_with_alpha_stays_rgba(server: LoopbackServer) -> None:
    im = fetch(server.url("/rgba.png"))
    assert im.mode == "RGBA"
    assert im.getpixel((0, 0)) == (10, 20, 30, 128)


def test_jpeg(server: LoopbackServer) -> None:
    im = fetch(server.url("/jpeg"))
    assert (im.size, im.mode) == ((64, 48), "RGB")
    assert all(abs(a - b) <= 6 for a, b in zip(im.getpixel((50, 24)), (30, 200, 40), strict=True))


def test_jpeg_exif_orientation_applied(server: LoopbackServer) -> None:
    im = fetch(server.url("/rotated.jpg"))
    assert im.size == (20, 40)  # stored 40x20 with orientation 6 (rotate 90° clockwise)
    assert im.getpixel((10, 5))[1] > 240  # the white half is now on top


def test_webp(server: LoopbackServer) -> None:
    im = fetch(server.url("/webp"))
    assert (im.size, im.mode, im.getpixel((3, 3))) == ((64, 48), "RGB", (30, 40, 200))


def test_animated_gif_gives_first_frame(server: LoopbackServer) -> None:
    im = fetch(server.url("/gif"))
    assert im.size == (32, 32)
    assert im.getpixel((5, 5))[:3] == (255, 0, 0)


def test_format_decided_by_magic_bytes(server: LoopbackServer) -> None:
    assert fetch(server.url("/png-as-text.jpg")).size == (64, 48)


def test_image_is_fully_loaded(server: LoopbackServer) -> None:
    im = fetch(server.url("/png"))
    assert im.im is not None  # pixel data present: usable after the source bytes are gone
    assert im.mode in ("RGB", "RGBA")


def test_fetch_bytes_returns_body_and_type(server: LoopbackServer) -> None:
    body, ctype = asyncio.run(fetch_bytes(server.url("/jpeg"), DEV))
    assert body == JPEG
    assert ctype == "image/jpeg"
    assert server.log[0].headers["Accept-Encoding"] == "identity"


def test_ipv6_loopback_and_legacy_forms_with_allow_private(server: LoopbackServer) -> None:
    for host in ("[::1]", "localhost", "0x7f.1", "2130706433"):
        assert fetch(server.url("/png", host)).size == (64, 48)
    assert len(server.log) == 4


# --- failures ---------------------------------------------------------------------------------


def test_not_found(server: LoopbackServer) -> None:
    assert failure(server.url("/missing.png")).code == "not_found"
    assert failure(server.url("/status?code=410")).code == "not_found"


@pytest.mark.parametrize("status", [401, 403, 500, 503])
def test_other_statuses(server: LoopbackServer, status: int) -> None:
    err = failure(server.url(f"/status?code={status}"))
    assert err.code == "download_failed"
    assert str(status) in err.message


def test_text_is_unsupported(server: LoopbackServer) -> None:
    assert failure(server.url("/text")).code == "unsupported_format"  # even served as image/png


def test_bmp_is_unsupported_although_pillow_reads_it(server: LoopbackServer) -> None:
    assert failure(server.url("/bmp")).code == "unsupported_format"


def test_truncated_image(server: LoopbackServer) -> None:
    assert failure(server.url("/truncated.png")).code == "unsupported_format"


def test_body_shorter_than_declared(server: LoopbackServer) -> None:
    assert failure(server.url("/short-body")).code == "download_failed"


def test_content_encoding_refused(server: LoopbackServer) -> None:
    assert failure(server.url("/gzip")).code == "download_failed"


def test_declared_too_large_refused_without_reading(server: LoopbackServer) -> None:
    start = time.monotonic()
    err = failure(server.url("/big-declared"))
    assert err.code == "too_large"
    assert str(BIG) in err.message
    assert time.monotonic() - start < 2.5  # the server hangs 3 s after the headers


@pytest.mark.parametrize("path", ["/big-chunked", "/big-close"])
def test_undeclared_too_large_stops_at_the_cap(server: LoopbackServer, path: str) -> None:
    assert failure(server.url(path)).code == "too_large"


def test_byte_cap_boundary(server: LoopbackServer) -> None:
    assert fetch(server.url("/png"), NetPolicy(allow_private=True, max_bytes=len(PNG))).size == (64, 48)
    err = failure(server.url("/png"), NetPolicy(allow_private=True, max_bytes=len(PNG) - 1))
    assert err.code == "too_large"


def test_bomb_claiming_gigapixels(server: LoopbackServer) -> None:
    assert failure(server.url("/bomb-claim.png")).code == "too_many_pixels"


def test_real_64_megapixel_png_refused_before_decoding(server: LoopbackServer) -> None:
    start = time.monotonic()
    assert failure(server.url("/bomb-real.png")).code == "too_many_pixels"
    assert time.monotonic() - start < 2


def test_pixel_cap_boundary(server: LoopbackServer) -> None:
    assert fetch(server.url("/png"), NetPolicy(allow_private=True, max_pixels=64 * 48)).size == (64, 48)
    err = failure(server.url("/png"), NetPolicy(allow_private=True, max_pixels=64 * 48 - 1))
    assert err.code == "too_many_pixels"


def test_slow_headers_time_out(server: LoopbackServer) -> None:
    start = time.monotonic()
    assert failure(server.url("/slow"), NetPolicy(allow_private=True, timeout=0.5)).code == "timeout"
    assert time.monotonic() - start < 2.5  # the 0.5 s limit, not the server's answer at 3 s


def test_trickling_body_times_out_in_total(server: LoopbackServer) -> None:
    # every byte arrives well within any per-read timeout; only the total limit stops it
    start = time.monotonic()
    assert failure(server.url("/trickle"), NetPolicy(allow_private=True, timeout=0.5)).code == "timeout"
    assert time.monotonic() - start < 2.5  # the whole body would take 7 s to trickle in


def test_connection_refused() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        assert failure(f"http://127.0.0.1:{port}/png").code == "download_failed"


# --- redirects --------------------------------------------------------------------------------


def test_redirect_chain_within_limit(server: LoopbackServer) -> None:
    assert fetch(server.url("/redirect/3")).size == (64, 48)
    assert server.paths() == ["/redirect/3", "/redirect/2", "/redirect/1", "/png"]


def test_too_many_redirects(server: LoopbackServer) -> None:
    err = failure(server.url("/redirect/4"))
    assert err.code == "download_failed"
    assert "redirects" in err.message
    assert "/png" not in server.paths()
    assert fetch(server.url("/redirect/4"), NetPolicy(allow_private=True, max_redirects=4)).size == (64, 48)


@pytest.mark.parametrize("status", [301, 303, 307, 308])
def test_every_redirect_status_followed(server: LoopbackServer, status: int) -> None:
    assert fetch(server.url(f"/redirect-to?status={status}&url=/jpeg")).size == (64, 48)


def test_redirect_without_location(server: LoopbackServer) -> None:
    assert failure(server.url("/redirect-no-location")).code == "download_failed"


def test_trusted_host_works_under_production_rules(server: LoopbackServer) -> None:
    assert fetch(server.url("/redirect/2"), ONE_HOST).size == (64, 48)


@pytest.mark.parametrize(
    ("host", "code"),
    [
        ("127.0.0.2", "blocked_address"),
        ("[::1]", "blocked_address"),
        ("localhost", "blocked_address"),
        ("0.0.0.0", "blocked_address"),
        ("2130706434", "blocked_address"),
        ("[::ffff:127.0.0.2]", "blocked_address"),
    ],
)
def test_redirect_to_blocked_address_is_never_followed(server: LoopbackServer, host: str, code: str) -> None:
    target = f"http://{host}:{server.port}/png"  # would reach the same server if followed
    err = failure(server.url(f"/redirect-to?url={target}"), ONE_HOST)
    assert err.code == code
    assert server.paths() == [f"/redirect-to?url={target}"]


@pytest.mark.parametrize(
    "target", ["file:///etc/passwd", "data:image/png;base64,AAAA", "gopher://x.example/"]
)
def test_redirect_to_other_scheme(server: LoopbackServer, target: str) -> None:
    assert failure(server.url(f"/redirect-to?url={target}")).code == "invalid_url"


# --- production rules: never fetched ------------------------------------------------------------

NEVER = [
    "127.0.0.1",
    "localhost",
    "10.0.0.1",
    "169.254.169.254",
    "[::1]",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "127.1",
    "[::ffff:127.0.0.1]",
    "0.0.0.0",
    "100.64.0.1",
    "192.168.1.1",
    "172.16.0.1",
    "[fc00::1]",
    "[fe80::1]",
    "224.0.0.1",
    "127.0.0.2",
    "0x7f.1",
    "[2002:7f00:1::1]",
]


@pytest.mark.parametrize("host", NEVER)
def test_blocked_addresses_are_never_fetched(server: LoopbackServer, host: str) -> None:
    url = f"http://{host}:{server.port}/png"
    err = failure(url, STRICT)
    assert err.code == "blocked_address", err
    with pytest.raises(ImageFetchError):
        asyncio.run(fetch_bytes(url, STRICT))
    assert server.log == []  # the loopback server listens on every loopback address


def test_local_name_refused_even_with_trusted_network(server: LoopbackServer) -> None:
    assert failure(f"http://localhost:{server.port}/png", ONE_HOST).code == "blocked_address"
    assert server.log == []


@pytest.mark.parametrize(
    "url", ["ftp://example.com/a.png", "http://user:pw@example.com/a.png", "http:///a.png", "", "nonsense"]
)
def test_bad_urls(url: str) -> None:
    assert failure(url, STRICT).code == "invalid_url"


def test_unresolvable_host_is_a_bad_url() -> None:
    err = failure("http://no-such-host.invalid/a.png", STRICT)
    assert err.code == "invalid_url"
    assert FETCH_ERROR_KINDS[err.code] == "bad_url"


# --- DNS rebinding: the address checked is the address connected to ------------------------------


def test_resolved_address_is_pinned(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first lookup says 127.0.0.1 (trusted), every later one a private address. The fetch
    must succeed, with ONE lookup per hop, connect to the first answer, and send the name as Host
    (httpx on its own could not even resolve img.example.net offline)."""
    lookups: list[str] = []

    async def rebinding_dns(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"] if len(lookups) == 1 else ["10.0.0.1"]

    monkeypatch.setattr(guard, "_getaddrinfo", rebinding_dns)
    url = f"http://img.example.net:{server.port}/png"
    assert fetch(url, ONE_HOST).size == (64, 48)
    assert lookups == ["img.example.net"]
    assert server.log[0].headers["Host"] == f"img.example.net:{server.port}"
    # the second lookup of the same name gets the private answer and is refused
    assert failure(url, ONE_HOST).code == "blocked_address"
    assert len(server.log) == 1


def test_redirect_hop_is_resolved_again(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"a.example.net": ["127.0.0.1"], "b.example.net": ["127.0.0.1", "192.168.0.10"]}

    async def dns(host: str, port: int) -> list[str]:
        return answers[host]

    monkeypatch.setattr(guard, "_getaddrinfo", dns)
    hop = f"http://b.example.net:{server.port}/png"
    err = failure(f"http://a.example.net:{server.port}/redirect-to?url={hop}", ONE_HOST)
    assert err.code == "blocked_address"
    assert len(server.log) == 1


# --- https: SNI and certificate checked against the name, not the pinned IP ----------------------


def test_https_sni_and_verification(tls_server: tuple[LoopbackServer, Path]) -> None:
    srv, ca = tls_server
    srv.log.clear()
    policy = NetPolicy(allow_private=True, ca_file=str(ca), timeout=5.0)
    assert fetch(srv.url("/png", "localhost"), policy).size == (64, 48)
    assert srv.sni[-1] == "localhost"
    assert srv.log[-1].headers["Host"] == f"localhost:{srv.port}"
    # the same server by IP: the certificate names localhost only, so verification fails
    assert failure(srv.url("/png", "127.0.0.1"), policy).code == "download_failed"
    # and without our CA, public CAs do not vouch for it
    assert failure(srv.url("/png", "localhost"), NetPolicy(allow_private=True)).code == "download_failed"


# --- data: URIs -------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_data_uri_png() -> None:
    im = fetch(f"data:image/png;base64,{b64(PNG)}", STRICT)
    assert (im.size, im.getpixel((0, 0))) == ((64, 48), (200, 30, 40))


def test_data_uri_lenient_forms() -> None:
    text = b64(GIF)
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    assert fetch(f"data:image/gif;base64,{wrapped}", STRICT).size == (32, 32)
    assert fetch(f"DATA:;base64,{text.rstrip('=')}", STRICT).size == (32, 32)
    urlsafe = base64.urlsafe_b64encode(JPEG).decode()
    assert fetch(f"data:image/jpeg;base64,{urlsafe}", STRICT).size == (64, 48)


def test_data_uri_fetch_bytes() -> None:
    assert asyncio.run(fetch_bytes(f"data:image/png;base64,{b64(PNG)}", STRICT)) == (PNG, "image/png")


@pytest.mark.parametrize(
    ("uri", "code"),
    [
        ("data:image/png;base64,@@@not base64!!", "invalid_url"),
        ("data:image/png;base64,QUJD=E=", "invalid_url"),
        ("data:image/png;base64", "invalid_url"),
        (f"data:image/png;base64,{b64(b'plain text, not an image')}", "unsupported_format"),
        ("data:text/plain,hello", "unsupported_format"),
        (f"data:image/png;base64,{b64(PNG[:40])}", "unsupported_format"),
    ],
)
def test_bad_data_uris(uri: str, code: str) -> None:
    assert failure(uri, STRICT).code == code


def test_data_uri_oversize() -> None:
    policy = NetPolicy(max_bytes=len(PNG) - 1)
    assert failure(f"data:image/png;base64,{b64(PNG)}", policy).code == "too_large"
    assert fetch(f"data:image/png;base64,{b64(PNG)}", NetPolicy(max_bytes=len(PNG))).size == (64, 48)
    huge = "A" * (STRICT.max_bytes * 4 // 3 + 100)  # refused before decoding
    assert failure(f"data:image/png;base64,{huge}", STRICT).code == "too_large"


# --- every failure is an ImageFetchError --------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP", b""]),
       st.binary(max_size=300))  # fmt: skip
def test_decode_garbage_only_raises_image_fetch_error(magic: bytes, tail: bytes) -> None:
    try:
        im = decode_image(magic + tail, DEV)
    except ImageFetchError as exc:
        assert exc.code in {"unsupported_format", "too_many_pixels", "bad_dimensions"}
    else:
        assert im.mode in ("RGB", "RGBA")


def test_error_kinds_table_is_complete() -> None:
    assert set(FETCH_ERROR_KINDS.values()) == {"bad_url", "too_large", "unsupported_format"}
    assert set(FETCH_ERROR_KINDS) == {
        "invalid_url",
        "blocked_address",
        "download_failed",
        "timeout",
        "too_large",
        "unsupported_format",
        "too_many_pixels",
        "bad_dimensions",
        "not_found",
    }
