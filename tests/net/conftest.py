"""Fixtures shared by the openmj.net tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.net.net_loopback import LoopbackServer, make_tls_context


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LoopbackServer, Path]]:
    """An HTTPS loopback server with a certificate for ``localhost`` and the CA file that signed it."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available")
    ctx, ca = make_tls_context(tmp_path_factory.mktemp("tls"), "localhost")
    srv = LoopbackServer(tls=ctx).start()
    yield srv, ca
    srv.stop()
