"""Fetching images that users point at (image prompts, references, masks).

Every failure is an ``ImageFetchError`` with a code from ``FETCH_ERROR_KINDS``: never another
exception type, never a hang (one total time limit covers DNS, connects, redirects and body).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
import urllib.parse

import httpx
import numpy as np
from PIL import Image

from openmj.net.guard import NetPolicy, UnsafeURLError, resolve_target
from openmj.net.pinned import open_pinned

# What each ImageFetchError code means to a client, so each dialect can map it to its own
# vocabulary (APIXO INVALID_IMAGE_URL / IMAGE_TOO_LARGE / UNSUPPORTED_FORMAT; EvoLink uses
# image_processing_error for all of them).
FETCH_ERROR_KINDS: dict[str, str] = {
    "invalid_url": "bad_url",  # malformed, wrong scheme, too long, unresolvable, bad data: URI
    "blocked_address": "bad_url",  # private/loopback/link-local/reserved address or local name
    "not_found": "bad_url",  # 404 / 410
    "download_failed": "bad_url",  # other HTTP status, connection error, too many redirects
    "timeout": "bad_url",  # the whole fetch took longer than policy.timeout
    "too_large": "too_large",  # more than policy.max_bytes
    "too_many_pixels": "too_large",  # width * height over policy.max_pixels (decompression bomb)
    "bad_dimensions": "too_large",  # a side over policy.max_side, or a shape beyond policy.max_aspect
    "unsupported_format": "unsupported_format",  # not PNG/JPEG/WebP/GIF, or corrupt
}

_REDIRECTS = {301, 302, 303, 307, 308}
_ACCEPT = "image/png, image/jpeg, image/webp, image/gif;q=0.9, */*;q=0.5"


class ImageFetchError(Exception):
    """A remote or inline image that could not be used; ``code`` is a key of FETCH_ERROR_KINDS."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def kind(self) -> str:
        return FETCH_ERROR_KINDS[self.code]

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def _from_unsafe(exc: UnsafeURLError) -> ImageFetchError:
    code = "blocked_address" if exc.code == "blocked_address" else "invalid_url"
    return ImageFetchError(code, exc.message)


# ---------------------------------------------------------------------------------------------
# data: URIs

_DATA_URI = re.compile(r"^data:(?P<type>[^,;]*)(?P<params>(?:;[^,;]*)*),(?P<data>.*)$", re.DOTALL | re.I)


def decode_data_uri(uri: str, policy: NetPolicy) -> tuple[bytes, str | None]:
    """``data:[type][;base64],payload`` → (bytes, media type). Lenient about whitespace,
    missing padding and the URL-safe alphabet; strict about size (checked before decoding)."""
    match = _DATA_URI.match(uri)
    if not match:
        raise ImageFetchError("invalid_url", "malformed data: URI (expected data:image/png;base64,...)")
    media_type = match["type"].strip().lower() or None
    is_base64 = any(p.strip().lower() == "base64" for p in match["params"].split(";"))
    payload = match["data"]
    # base64 is 4 characters per 3 bytes; percent-encoding at least 1 character per byte.
    budget = policy.max_bytes * 4 // 3 + 4 if is_base64 else policy.max_bytes * 3
    if len(payload) > budget:
        raise ImageFetchError("too_large", f"data: URI is larger than {policy.max_bytes} bytes")
    if is_base64:
        text = re.sub(r"\s+", "", urllib.parse.unquote(payload) if "%" in payload else payload)
        text = text.replace("-", "+").replace("_", "/")
        text += "=" * (-len(text) % 4)
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ImageFetchError("invalid_url", "data: URI is not valid base64") from None
    else:
        data = urllib.parse.unquote_to_bytes(payload)
    if len(data) > policy.max_bytes:
        raise ImageFetchError("too_large", f"data: URI is larger than {policy.max_bytes} bytes")
    return data, media_type


def is_data_uri(url: str) -> bool:
    return url[:5].lower() == "data:"


# ---------------------------------------------------------------------------------------------
# http(s)


async def _download(url: str, policy: NetPolicy) -> tuple[bytes, str | None]:
    current = url
    for _hop in range(policy.max_redirects + 1):
        target = await resolve_target(current, policy)  # every hop is checked again
        headers = {"Accept": _ACCEPT, "Accept-Encoding": "identity"}
        async with open_pinned(
            target, "GET", headers=headers, timeout=policy.timeout, ca_file=policy.ca_file
        ) as response:
            status = response.status_code
            if status in _REDIRECTS:
                location = response.headers.get("location")
                if not location:
                    raise ImageFetchError("download_failed", f"HTTP {status} redirect without a Location")
                try:
                    current = str(target.url.join(location))
                except Exception:
                    bad = f"redirect to an invalid URL: {location!r}"
                    raise ImageFetchError("invalid_url", bad) from None
                continue
            if status in (404, 410):
                raise ImageFetchError("not_found", f"image not found (HTTP {status})")
            if not 200 <= status < 300:
                raise ImageFetchError("download_failed", f"image server answered HTTP {status}")
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                # We asked for identity; decoding gzip here would reopen the bomb door.
                raise ImageFetchError("download_failed", f"unexpected Content-Encoding {encoding!r}")
            declared = response.headers.get("content-length")
            if declared and declared.strip().isdigit() and int(declared) > policy.max_bytes:
                raise ImageFetchError(
                    "too_large", f"image is {int(declared)} bytes; the limit is {policy.max_bytes}"
                )
            body = bytearray()
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) > policy.max_bytes:
                    raise ImageFetchError("too_large", f"image is larger than {policy.max_bytes} bytes")
            return bytes(body), response.headers.get("content-type")
    raise ImageFetchError("download_failed", f"more than {policy.max_redirects} redirects")


async def fetch_bytes(url: str, policy: NetPolicy) -> tuple[bytes, str | None]:
    """Download ``url`` (http, https or data:) under ``policy``: (body, content type).

    DNS is resolved here and every address checked; the request goes to those addresses only.
    Redirects are followed by hand (at most ``policy.max_redirects``), each hop checked again.
    Raises ImageFetchError only.
    """
    if not isinstance(url, str):
        raise ImageFetchError("invalid_url", "URL must be a string")
    if is_data_uri(url):
        return decode_data_uri(url, policy)
    try:
        async with asyncio.timeout(policy.timeout):
            return await _download(url, policy)
    except ImageFetchError:
        raise
    except UnsafeURLError as exc:
        raise _from_unsafe(exc) from None
    except (TimeoutError, httpx.TimeoutException):
        raise ImageFetchError("timeout", f"image download took longer than {policy.timeout:g} s") from None
    except Exception as exc:  # connection refused, TLS failure, protocol error, ...
        detail = str(exc) or exc.__class__.__name__
        raise ImageFetchError("download_failed", f"image download failed: {detail}") from None


# ---------------------------------------------------------------------------------------------
# decoding


def sniff_format(data: bytes) -> str | None:
    """The Pillow format name from the magic bytes, or None if not one we accept."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def check_dimensions(width: int, height: int, policy: NetPolicy) -> None:
    """Refuse an image by its header alone: too many pixels, a side too long, too thin a shape."""
    if width < 1 or height < 1:
        raise ImageFetchError("bad_dimensions", f"image is {width}x{height}: it has no pixels")
    if width * height > policy.max_pixels:
        raise ImageFetchError(
            "too_many_pixels",
            f"image is {width}x{height} = {width * height} pixels; the limit is {policy.max_pixels}",
        )
    if max(width, height) > policy.max_side:
        raise ImageFetchError(
            "bad_dimensions", f"image is {width}x{height}; no side may exceed {policy.max_side} pixels"
        )
    if max(width, height) / min(width, height) > policy.max_aspect:
        raise ImageFetchError(
            "bad_dimensions",
            f"image is {width}x{height}; its aspect ratio may not exceed {policy.max_aspect:g}:1",
        )


def probe_image(data: bytes, policy: NetPolicy) -> tuple[str, int, int]:
    """(format, width, height) from the header only, with the checks of `check_dimensions`:
    what submit can refuse at once when the bytes are in the request (data: URIs, base64)."""
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageFetchError("unsupported_format", "not a PNG, JPEG, WebP or GIF image")
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            width, height = im.size
    except Exception as exc:
        raise ImageFetchError("unsupported_format", f"cannot read the {fmt} image: {exc}") from None
    check_dimensions(width, height, policy)
    return fmt, width, height


#: modes whose samples are wider than 8 bits (16-bit PNG, 32-bit integer or float TIFF-likes)
_WIDE_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def _to_rgb(im: Image.Image) -> Image.Image:
    """Frame 0 as RGB, or RGBA when the image has transparency. Palette, CMYK, grey, 1-bit and
    16-bit images are converted here, so a model never sees an unusual mode."""
    if im.mode in _WIDE_MODES:
        # Pillow's own I;16 → RGB conversion clips at 255 (a white picture): scale to 8 bits
        wide = np.asarray(im.convert("F") if im.mode != "F" else im, dtype=np.float32)
        peak = 65535.0 if im.mode.startswith("I;16") else max(float(np.nanmax(wide)), 1.0)
        grey = np.clip(np.nan_to_num(wide) * (255.0 / peak), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    return im.convert("RGBA" if has_alpha else "RGB")  # decodes frame 0 only


def decode_image(data: bytes, policy: NetPolicy) -> Image.Image:
    """Bytes → a loaded RGB or RGBA image (first frame), checking size and shape before decoding.

    Only the sniffed format's decoder is allowed to run, never Pillow's whole plugin zoo.
    """
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageFetchError("unsupported_format", "not a PNG, JPEG, WebP or GIF image")
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:  # lazy: reads the header only
            check_dimensions(*im.size, policy)
            try:
                orientation = int(im.getexif().get(0x0112, 1))
            except Exception:  # a broken EXIF block is no reason to refuse the picture
                orientation = 1
            out = _to_rgb(im)
    except ImageFetchError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageFetchError("too_many_pixels", f"image has too many pixels: {exc}") from None
    except Exception as exc:  # truncated or corrupt data, unsupported variant of the format
        raise ImageFetchError("unsupported_format", f"cannot decode the {fmt} image: {exc}") from None
    if orientation in _EXIF_TRANSPOSE:
        out = out.transpose(_EXIF_TRANSPOSE[orientation])
    out.load()
    return out


async def fetch_image(url: str, policy: NetPolicy) -> Image.Image:
    """Fetch and decode an image: http(s) URL or data: URI → loaded RGB/RGBA image (GIF and
    animated WebP: first frame). Raises ImageFetchError only."""
    data, _content_type = await fetch_bytes(url, policy)  # the type header is not trusted
    try:
        return await asyncio.to_thread(decode_image, data, policy)  # decoding is CPU work
    except ImageFetchError:
        raise
    except Exception as exc:  # MemoryError and friends: still a clear, typed failure
        raise ImageFetchError("unsupported_format", f"cannot decode the image: {exc}") from None
