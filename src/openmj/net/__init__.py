"""Every outbound request of openmj goes through this package (see docs/network-safety.md).

- ``check_url``: static URL check at submit time (no I/O).
- ``fetch_bytes`` / ``fetch_image``: user-supplied images (http, https, data:).
- ``post_json``: callback delivery.
"""

from openmj.net.fetch import (
    FETCH_ERROR_KINDS,
    ImageFetchError,
    check_dimensions,
    decode_data_uri,
    decode_image,
    fetch_bytes,
    fetch_image,
    is_data_uri,
    probe_image,
    sniff_format,
)
from openmj.net.guard import (
    NetPolicy,
    Target,
    UnsafeURLError,
    blocked_reason,
    check_url,
    parse_legacy_ipv4,
    resolve_target,
)
from openmj.net.post import DeliveryResult, post_json

__all__ = [
    "FETCH_ERROR_KINDS",
    "DeliveryResult",
    "ImageFetchError",
    "NetPolicy",
    "Target",
    "UnsafeURLError",
    "blocked_reason",
    "check_dimensions",
    "check_url",
    "decode_data_uri",
    "decode_image",
    "fetch_bytes",
    "fetch_image",
    "is_data_uri",
    "parse_legacy_ipv4",
    "post_json",
    "probe_image",
    "resolve_target",
    "sniff_format",
]
