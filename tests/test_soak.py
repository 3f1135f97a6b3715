"""Issue 18's soak test, reduced to fit the default suite (`make soak` runs 200 tasks): two API
nodes and two workers on PostgreSQL and SeaweedFS, random SIGKILLs and restarts throughout, then
nothing lost, nothing charged twice, ledgers exact, every link served by both nodes (tests/soak.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.seaweed import SeaweedS3
from tests.soak import run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_soak_with_random_sigkills(tmp_path: Path, pg_url: str, seaweed: SeaweedS3) -> None:
    seaweed.create_bucket("openmj-soak")
    report = run(tmp_path, pg_url, seaweed, "openmj-soak", tasks=24, keys=3, kills=4)
    print(report.text())
    assert report.kills == {"api node": 2, "worker": 2}, report.text()
    assert report.ok(), report.text()
