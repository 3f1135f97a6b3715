"""Issue 18: /healthz (alive) and /readyz (can serve: database reachable, schema at this code's
migration, media store writable or its bucket reachable), 503 with the reasons when not."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from openmj.store.db import head_revision
from tests.fake_engine import FakeEngine
from tests.http_client import HTTP
from tests.live import LiveServer, make_settings
from tests.seaweed import SeaweedS3

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(make_settings(tmp_path / "data"), FakeEngine()) as live:
        yield live


def readyz(live: LiveServer) -> httpx.Response:
    return HTTP.get(f"{live.url}/readyz", timeout=30)


def test_ready_when_every_check_passes(node: LiveServer) -> None:
    r = readyz(node)
    assert r.status_code == 200
    assert r.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "media": "ok"},
        "reasons": [],
    }
    assert HTTP.get(f"{node.url}/healthz").json()["status"] == "ok"


def test_a_schema_at_another_migration_is_not_ready(node: LiveServer) -> None:
    path = node.settings.data_dir / "openmj.db"
    with sqlite3.connect(path) as db:  # as if an older node had migrated it, or a newer one
        db.execute("UPDATE alembic_version SET version_num = '0001'")
    r = readyz(node)
    assert r.status_code == 503
    assert r.json()["status"] == "not_ready"
    assert r.json()["reasons"] == [f"migrations: at 0001, this code needs {head_revision()}"]
    assert HTTP.get(f"{node.url}/healthz").status_code == 200  # alive all the same
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = ?", (head_revision(),))
    assert readyz(node).status_code == 200


def test_a_media_folder_that_cannot_be_written_is_not_ready(node: LiveServer) -> None:
    media = node.settings.data_dir / "media"
    shutil.rmtree(media)
    media.write_text("a file where the folder was")  # what a lost mount looks like, even to root
    try:
        r = readyz(node)
        assert r.status_code == 503
        assert r.json()["checks"]["media"].startswith("unreachable or not writable")
        assert r.json()["reasons"] == [f"media: {r.json()['checks']['media']}"]
    finally:
        media.unlink()
        media.mkdir()
    assert readyz(node).status_code == 200


def test_a_bucket_that_does_not_answer_is_not_ready(seaweed: SeaweedS3, tmp_path: Path) -> None:
    seaweed.create_bucket("openmj-ready")
    for bucket, expected in (("openmj-ready", 200), ("openmj-no-such-bucket", 503)):
        settings = make_settings(tmp_path / bucket, **seaweed.settings(bucket, "media"))
        with LiveServer(settings, None) as live:
            r = readyz(live)
            assert r.status_code == expected, r.text
            assert (r.json()["checks"]["media"] == "ok") is (expected == 200)
