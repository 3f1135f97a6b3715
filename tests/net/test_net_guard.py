"""The static URL check and the address rules (openmj.net.guard)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openmj.net import NetPolicy, UnsafeURLError, blocked_reason, check_url, guard, parse_legacy_ipv4

STRICT = NetPolicy()
DEV = NetPolicy(allow_private=True)


def code_of(url: str, policy: NetPolicy = STRICT, **kw: object) -> str | None:
    try:
        check_url(url, policy, **kw)  # type: ignore[arg-type]
    except UnsafeURLError as exc:
        return exc.code
    return None


BLOCKED_HOSTS = [
    "127.0.0.1",
    "127.0.0.2",
    "localhost",
    "LOCALHOST.",
    "app.localhost",
    "printer.local",
    "metadata.google.internal",
    "intranet",  # single label: resolved through search domains
    "10.0.0.1",
    "169.254.169.254",
    "[::1]",
    "2130706433",
    "0x7f000001",
    "0x7f.1",
    "0177.0.0.1",
    "0177.1",
    "127.1",
    "127.0.1",
    "127.0.0.1.",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::ffff:169.254.169.254]",
    "[::127.0.0.1]",
    "[2002:7f00:1::1]",  # 6to4 of 127.0.0.1
    "[2002:a00:1::1]",  # 6to4 of 10.0.0.1
    "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254
    "[64:ff9b:1::1]",
    "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",  # Teredo
    "0.0.0.0",
    "0",
    "[::]",
    "100.64.0.1",
    "192.168.1.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.8",
    "192.0.2.1",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.9",
    "[fc00::1]",
    "[fd12:3456::1]",
    "[fe80::1]",
    "[fec0::1]",
    "[2001:db8::1]",
    "224.0.0.1",
    "239.255.255.250",
    "[ff02::1]",
    "240.0.0.1",
    "255.255.255.255",
]


@pytest.mark.parametrize("host", BLOCKED_HOSTS)
def test_blocked_hosts_are_refused(host: str) -> None:
    assert code_of(f"http://{host}/a.png") == "blocked_address"
    assert code_of(f"https://{host}:8443/a.png") == "blocked_address"


@pytest.mark.parametrize("host", BLOCKED_HOSTS)
def test_allow_private_lifts_the_address_rule(host: str) -> None:
    if host == "0177.0.0.1":  # httpx cannot parse a dotted quad with a leading zero at all
        assert code_of(f"http://{host}/a.png", DEV) == "invalid_url"
    else:
        assert code_of(f"http://{host}/a.png", DEV) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a.png",
        "http://cdn.example.org:8080/x/y.jpg?sig=abc#frag",
        "https://8.8.8.8/img",
        "https://[2606:4700:4700::1111]/img",
        "https://[::ffff:8.8.8.8]/img",  # mapped public IPv4 is that public address
        "https://[2002:808:808::1]/img",  # 6to4 of a public address
        "https://[64:ff9b::808:808]/img",  # NAT64 (DNS64 on IPv6-only hosts) of a public address
        "https://bücher.example/bild.png",  # IDN
        "https://127.0.0.1.nip.io/x",  # a name: its addresses are checked when resolved
        "HTTPS://EXAMPLE.COM/A.PNG",
    ],
)
def test_public_urls_pass(url: str) -> None:
    assert code_of(url) is None


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("", "invalid_url"),
        ("ftp://example.com/a.png", "scheme_not_allowed"),
        ("file:///etc/passwd", "scheme_not_allowed"),
        ("gopher://example.com/", "scheme_not_allowed"),
        ("data:image/png;base64,AAAA", "scheme_not_allowed"),
        ("example.com/a.png", "scheme_not_allowed"),
        ("//example.com/a.png", "scheme_not_allowed"),
        ("http:///a.png", "invalid_url"),
        ("http://user:pw@example.com/", "invalid_url"),
        ("http://example.com@127.0.0.1/", "invalid_url"),
        ("http://example.com\\@127.0.0.1/", "invalid_url"),
        ("http://exa mple.com/", "invalid_url"),
        ("http://example.com/\r\nX-Injected: 1", "invalid_url"),
        ("http://example.com:0/", "invalid_url"),
        ("http://example.com:70000/", "invalid_url"),
        ("http://[fe80::1%25eth0]/", "invalid_url"),
        ("http://[::1/", "invalid_url"),
        ("http://0x7f.09/", "invalid_url"),
        ("http://1.2.3.4.5/", "invalid_url"),
        ("http://256.1.1.1/", "invalid_url"),
        ("http://a..b/", "invalid_url"),
        ("http://-bad-.com/", "invalid_url"),
        ("http://%6c%6f%63%61%6c%68%6f%73%74/", "invalid_url"),
    ],
)
def test_malformed_urls(url: str, code: str) -> None:
    assert code_of(url) == code


def test_https_only() -> None:
    assert code_of("http://example.com/hook", https_only=True) == "https_required"
    assert code_of("https://example.com/hook", https_only=True) is None
    # the development switch lifts https-only too (receivers on loopback speak plain http)
    assert code_of("http://example.com/hook", DEV, https_only=True) is None
    assert code_of("http://127.0.0.1:9/hook", DEV, https_only=True) is None


def test_length_limit() -> None:
    base = "https://example.com/"
    assert code_of(base + "a" * (2048 - len(base)), max_length=2048) is None
    assert code_of(base + "a" * (2049 - len(base)), max_length=2048) == "url_too_long"
    assert code_of(base + "a" * 9000) == "url_too_long"  # default cap without max_length
    assert code_of(base + "a" * 9000, max_length=10_000) is None


def test_error_carries_code_and_message() -> None:
    with pytest.raises(UnsafeURLError) as info:
        check_url("http://169.254.169.254/latest/meta-data", STRICT)
    assert info.value.code == "blocked_address"
    assert "169.254.169.254" in info.value.message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.0x1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("3232235777", "192.168.1.1"),
        ("8.8.8.8.", "8.8.8.8"),
        ("example.com", None),
        ("1.2.3.example", None),
    ],
)
def test_parse_legacy_ipv4(host: str, expected: str | None) -> None:
    ip = parse_legacy_ipv4(host)
    assert (str(ip) if ip else None) == expected


@pytest.mark.parametrize("host", ["4294967296", "1.2.3.256", "1.2.65536", "08.1.1.1", "0x1.09", "1.2.3.4.5"])
def test_parse_legacy_ipv4_rejects_ambiguous(host: str) -> None:
    with pytest.raises(UnsafeURLError):
        parse_legacy_ipv4(host)


def test_allowed_networks_trust_only_what_they_name() -> None:
    policy = NetPolicy(allowed_networks=("10.1.2.0/24",))
    assert blocked_reason(ipaddress.ip_address("10.1.2.3"), policy) is None
    assert blocked_reason(ipaddress.ip_address("::ffff:10.1.2.3"), policy) is None
    assert blocked_reason(ipaddress.ip_address("10.1.3.1"), policy) == "private"
    assert blocked_reason(ipaddress.ip_address("127.0.0.1"), policy) == "loopback"
    assert code_of("http://10.1.2.3/a.png", policy) is None
    assert code_of("http://10.1.3.3/a.png", policy) == "blocked_address"
    with pytest.raises(ValueError):
        NetPolicy(allowed_networks=("not a network",))


def test_from_env() -> None:
    assert NetPolicy.from_env({}).allow_private is False
    assert NetPolicy.from_env({"OPENMJ_ALLOW_PRIVATE_NETWORK": "1"}).allow_private is True
    assert NetPolicy.from_env({"OPENMJ_ALLOW_PRIVATE_NETWORK": "0"}).allow_private is False
    assert NetPolicy.from_env({}, timeout=3.0).timeout == 3.0


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.sampled_from(["http://", "https://", "", "data:"]))
def test_check_url_never_raises_anything_else(tail: str, prefix: str) -> None:
    try:
        check_url(prefix + tail, STRICT)
    except UnsafeURLError as exc:
        assert exc.code in {"invalid_url", "scheme_not_allowed", "blocked_address", "url_too_long"}


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_integer_spelling_agrees_with_ipaddress(value: int) -> None:
    ip = ipaddress.IPv4Address(value)
    for spelling in (str(value), hex(value), f"{value >> 24}.{value & 0xFFFFFF}"):
        assert parse_legacy_ipv4(spelling) == ip
        blocked = blocked_reason(ip, STRICT) is not None
        assert (code_of(f"http://{spelling}/") == "blocked_address") == blocked


# --- DNS ---------------------------------------------------------------------------------------


def test_real_resolver_localhost_is_blocked() -> None:
    # bypasses the name rule to prove the resolved-address check on its own
    with pytest.raises(UnsafeURLError) as info:
        asyncio.run(guard.resolve_host("localhost", 80, STRICT))
    assert info.value.code == "blocked_address"
    assert asyncio.run(guard.resolve_host("localhost", 80, DEV))  # allowed in development


def test_unresolvable_host() -> None:
    with pytest.raises(UnsafeURLError) as info:
        asyncio.run(guard.resolve_target("http://no-such-host.invalid/a.png", STRICT))
    assert info.value.code == "unresolvable_host"


def fake_dns(monkeypatch: pytest.MonkeyPatch, *answers: list[str]) -> list[str]:
    """Replace the system resolver (only for DNS-rebinding cases): successive lookups get
    successive answers. Returns the list of names looked up."""
    calls: list[str] = []

    async def getaddrinfo(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[min(len(calls), len(answers)) - 1]

    monkeypatch.setattr(guard, "_getaddrinfo", getaddrinfo)
    return calls


def test_name_with_any_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, ["93.184.215.14", "10.0.0.5"])
    with pytest.raises(UnsafeURLError) as info:
        asyncio.run(guard.resolve_target("https://mixed.example.com/a.png", STRICT))
    assert info.value.code == "blocked_address"
    assert "10.0.0.5" in info.value.message


def test_name_resolving_to_metadata_ipv6_mapped_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, ["::ffff:169.254.169.254"])
    with pytest.raises(UnsafeURLError):
        asyncio.run(guard.resolve_target("https://sneaky.example.com/", STRICT))


def test_public_answers_are_kept_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "93.184.215.14"])
    target = asyncio.run(guard.resolve_target("https://public.example.com/", STRICT))
    assert [str(a) for a in target.addresses] == ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    assert target.host_header == "public.example.com"
