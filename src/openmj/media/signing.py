"""Signed, expiring media URLs: HMAC-SHA256 over path, expiry and key id."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode


class UrlSigner:
    def __init__(self, secret: bytes, public_url: str) -> None:
        self._secret = secret
        self.public_url = public_url.rstrip("/")

    def _sig(self, path: str, exp: int, kid: str) -> str:
        msg = f"{path}\n{exp}\n{kid}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:32]

    def sign(self, path: str, exp: float, kid: str) -> str:
        """`path` is the URL path (starting with /media/); returns the full public URL."""
        e = int(exp)
        query = urlencode({"exp": e, "kid": kid, "sig": self._sig(path, e, kid)})
        return f"{self.public_url}{path}?{query}"

    def verify(
        self, path: str, exp: str | None, kid: str | None, sig: str | None, now: float | None = None
    ) -> bool:
        if not exp or not kid or not sig or not exp.isdigit():
            return False
        if int(exp) < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(self._sig(path, int(exp), kid), sig)
