"""URL and address rules for every outbound request (SSRF guard).

Two layers:

* ``check_url`` is static: scheme, length, host syntax, literal IP addresses in every form a
  resolver accepts, and host names that only mean something on the local network. It does no
  network I/O (not even DNS), so it is cheap and deterministic at submit time.
* ``resolve_target`` adds DNS: it resolves the host once and checks every address returned.
  The caller then connects to exactly those addresses (see ``pinned.py``), so the address that
  was checked is the address that is connected to: no DNS-rebinding window.

A name that resolves to several addresses is refused if ANY of them is blocked. A mix of
public and private records is the classic rebinding trick, and no legitimate public host needs it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import urllib.parse
from dataclasses import dataclass, field
from functools import lru_cache

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_MAX_URL_LENGTH = 8192  # when the caller gives no max_length: generous for signed CDN URLs

_ENV_ALLOW_PRIVATE = "OPENMJ_ALLOW_PRIVATE_NETWORK"


@dataclass(frozen=True)
class NetPolicy:
    """Limits and address rules for one kind of outbound request.

    ``allow_private`` (``OPENMJ_ALLOW_PRIVATE_NETWORK=1``, development and tests only) lifts the
    address and host-name rules and the https-only rule for callbacks.
    ``allowed_networks`` lets an operator trust specific private networks (an internal image
    store, say) while every other private address stays refused; https rules still apply.
    ``ca_file`` is a PEM bundle to trust instead of the public CAs (an internal CA).
    """

    allow_private: bool = False
    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000
    # a decoded image's sides and shape: a 200000×1 PNG has few pixels, but image processors
    # scale its short side up (CLIP to 224 px: ~10 gigapixels), so sides and aspect are bounded too
    max_side: int = 16_384
    max_aspect: float = 16.0  # Midjourney itself goes to 14:1
    timeout: float = 15.0
    max_redirects: int = 3
    allowed_networks: tuple[str, ...] = field(default=())
    ca_file: str | None = None

    def __post_init__(self) -> None:
        _parse_networks(self.allowed_networks)  # fail at start-up, not at the first request

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> NetPolicy:
        env = os.environ if environ is None else environ
        allow = env.get(_ENV_ALLOW_PRIVATE, "").strip().lower() in {"1", "true", "yes", "on"}
        return cls(allow_private=allow, **overrides)  # type: ignore[arg-type]


class UnsafeURLError(ValueError):
    """A URL that openmj refuses to request.

    Codes: ``invalid_url``, ``scheme_not_allowed``, ``https_required``, ``url_too_long``,
    ``blocked_address``, ``unresolvable_host``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# Every network below is refused even if ipaddress calls it global (multicast is "global" to
# Python, for one). The label is what the error message says.
_BLOCKED_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(net), label)
    for net, label in (
        ("0.0.0.0/8", "unspecified/'this network'"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata)"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible (deprecated)"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments (Teredo, benchmarking, ORCHID)"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing"),
        ("fc00::/7", "unique local (private)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    )
)

_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# Names that only mean something on the local machine or network (RFC 6761, 6762, 8375,
# ICANN's .internal). Single-label names are refused too: they resolve through search domains.
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_LOCAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".home.arpa", ".lan", ".intranet")

_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


@lru_cache(maxsize=64)
def _parse_networks(
    networks: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def parse_legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Parse the IPv4 forms that inet_aton/getaddrinfo (and browsers) accept.

    ``127.1``, ``2130706433``, ``0x7f.1``, ``0177.0.0.1``, mixed. Returns None when ``host``
    does not end in a number (so it is a name); raises UnsafeURLError when it does but is not a
    valid address (``0x7f.09``), because different parsers disagree about such hosts.
    """
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not _NUMERIC_LABEL.match(parts[-1]):
        return None
    bad = UnsafeURLError("invalid_url", f"host {host!r} looks like an IP address but is not a valid one")
    if len(parts) > 4:
        raise bad
    numbers: list[int] = []
    for part in parts:
        if part.startswith("0x"):
            digits, base = part[2:], 16
        elif len(part) > 1 and part.startswith("0"):
            digits, base = part[1:], 8
        else:
            digits, base = part, 10
        if part == "" or not re.fullmatch(r"[0-9a-f]*", digits):
            raise bad
        try:
            numbers.append(int(digits, base) if digits else 0)
        except ValueError:
            raise bad from None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise bad
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address that packets to ``ip`` may end up at (6to4, NAT64)."""
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def blocked_reason(ip: IPAddress, policy: NetPolicy) -> str | None:
    """Why ``ip`` must not be connected to under ``policy``, or None if it may be."""
    if policy.allow_private:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d on the wire
            return blocked_reason(ip.ipv4_mapped, policy)
        if ip.scope_id:
            return "scoped IPv6 address"
    if any(ip in net for net in _parse_networks(policy.allowed_networks)):
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            reason = blocked_reason(embedded, policy)
            if reason:
                return f"{reason} IPv4 address {embedded} embedded in IPv6"
            if ip in _NAT64:  # DNS64 on an IPv6-only host: the public IPv4 address decides
                return None
    for net, label in _BLOCKED_NETWORKS:
        if ip.version == net.version and ip in net:
            return label
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_link_local:
        return "not a public address"
    return None


def _check_ip(ip: IPAddress, policy: NetPolicy, host: str) -> None:
    reason = blocked_reason(ip, policy)
    if reason:
        shown = host if host == str(ip) else f"{host} ({ip})"
        raise UnsafeURLError("blocked_address", f"{shown} is not allowed ({reason} address)")


@dataclass(frozen=True)
class Target:
    """A checked URL: the parsed URL, its ASCII host, and (after resolve) the addresses to use."""

    url: httpx.URL
    host: str  # IDNA-encoded, lower case, no trailing dot, no brackets
    ip: IPAddress | None  # set when the host is an IP literal
    addresses: tuple[IPAddress, ...] = ()

    @property
    def port(self) -> int:
        return self.url.port or (443 if self.url.scheme == "https" else 80)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.url.port is None else f"{host}:{self.url.port}"


def _refuse_unparsable_ip(url: str, policy: NetPolicy) -> None:
    """Raise blocked_address if the host of a URL httpx cannot parse is a blocked IP anyway."""
    try:
        host = (urllib.parse.urlsplit(url).hostname or "").lower()
        ip = parse_legacy_ipv4(host) if host else None
    except (ValueError, UnsafeURLError):
        return
    if ip is not None:
        _check_ip(ip, policy, host)


def parse_target(
    url: str,
    policy: NetPolicy,
    *,
    https_only: bool = False,
    max_length: int | None = None,
) -> Target:
    """The static check (no I/O). Raises UnsafeURLError."""
    if not isinstance(url, str) or not url:
        raise UnsafeURLError("invalid_url", "URL is empty")
    limit = DEFAULT_MAX_URL_LENGTH if max_length is None else max_length
    if len(url) > limit:
        raise UnsafeURLError("url_too_long", f"URL is {len(url)} characters long; the limit is {limit}")
    if _FORBIDDEN_CHARS.search(url):
        raise UnsafeURLError("invalid_url", "URL contains whitespace, control characters or backslashes")
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in {"http", "https"}:
        raise UnsafeURLError("scheme_not_allowed", f"only http and https URLs are allowed, not {scheme!r}")
    if https_only and scheme != "https" and not policy.allow_private:
        raise UnsafeURLError("https_required", "only https URLs are allowed")
    try:
        parsed = httpx.URL(url)
    except Exception as exc:  # httpx.InvalidURL, but IDNA errors can surface as others
        _refuse_unparsable_ip(url, policy)  # "0177.0.0.1" is refused by httpx: say why it is bad
        raise UnsafeURLError("invalid_url", f"URL cannot be parsed: {exc}") from None
    if parsed.userinfo:
        raise UnsafeURLError("invalid_url", "URLs with a user name or password are not allowed")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise UnsafeURLError("invalid_url", f"port {parsed.port} is out of range")
    try:
        host = parsed.raw_host.decode("ascii").lower()
    except UnicodeDecodeError:
        raise UnsafeURLError("invalid_url", "host name is not valid") from None
    if not host:
        raise UnsafeURLError("invalid_url", "URL has no host")
    if ":" in host:
        if "%" in host:
            raise UnsafeURLError("invalid_url", "IPv6 zone identifiers are not allowed")
        try:
            ip: IPAddress | None = ipaddress.IPv6Address(host)
        except ValueError:
            raise UnsafeURLError("invalid_url", f"{host!r} is not a valid IPv6 address") from None
    else:
        host = host.removesuffix(".")
        labels = host.split(".")
        if not host or len(host) > 253 or not all(_LABEL.match(label) for label in labels):
            raise UnsafeURLError("invalid_url", f"{host!r} is not a valid host name")
        ip = parse_legacy_ipv4(host)
    if ip is not None:
        _check_ip(ip, policy, host)
        return Target(url=parsed, host=host, ip=ip)
    if not policy.allow_private:
        if host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES):
            raise UnsafeURLError("blocked_address", f"{host} is a local host name, which is not allowed")
        if "." not in host:
            raise UnsafeURLError("blocked_address", f"{host} is not a public domain name (no dot)")
    return Target(url=parsed, host=host, ip=None)


def check_url(
    url: str,
    policy: NetPolicy,
    *,
    https_only: bool = False,
    max_length: int | None = None,
) -> None:
    """Refuse a URL that must never be requested; static, no network I/O (not even DNS).

    Names are resolved and their addresses checked only when the request is made
    (``fetch_bytes``/``fetch_image``/``post_json``), on the addresses actually connected to;
    ``resolve_target`` does that check ahead of time for a caller that wants it at submit.
    Raises UnsafeURLError.
    """
    parse_target(url, policy, https_only=https_only, max_length=max_length)


async def _getaddrinfo(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (tests replace this)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


async def resolve_host(host: str, port: int, policy: NetPolicy) -> tuple[IPAddress, ...]:
    """Resolve ``host`` and check EVERY address; raises UnsafeURLError if any is blocked."""
    try:
        found = await _getaddrinfo(host, port)
    except (OSError, UnicodeError) as exc:
        raise UnsafeURLError("unresolvable_host", f"cannot resolve host {host}: {exc}") from None
    addresses: list[IPAddress] = []
    for text in found:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:  # a scoped "fe80::1%eth0" and the like
            bad = f"{host} resolves to {text}, which is not allowed"
            raise UnsafeURLError("blocked_address", bad) from None
        _check_ip(ip, policy, host)
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise UnsafeURLError("unresolvable_host", f"host {host} has no addresses")
    return tuple(addresses)


async def resolve_target(
    url: str,
    policy: NetPolicy,
    *,
    https_only: bool = False,
    max_length: int | None = None,
) -> Target:
    """``check_url`` plus DNS: the checked addresses to connect to. Raises UnsafeURLError."""
    target = parse_target(url, policy, https_only=https_only, max_length=max_length)
    if target.ip is not None:
        return Target(target.url, target.host, target.ip, (target.ip,))
    addresses = await resolve_host(target.host, target.port, policy)
    return Target(target.url, target.host, None, addresses)
