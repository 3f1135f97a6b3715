"""The OpenAPI tells the truth (issue 10): every body and error envelope is documented, and requests
generated from it — valid and invalid alike — never get a 5xx from a running server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from openmj.app import create_app
from openmj.config import Settings
from tests.live import LiveServer, make_settings

#: examples per operation and mode; CI shares 2 cores, the full two-minute run is in docs/security.md
EXAMPLES = int(os.environ.get("OPENMJ_FUZZ_EXAMPLES", "12"))


def _document() -> dict[str, Any]:
    return create_app(Settings(data_dir=Path("/nonexistent-openmj-docs"))).openapi()


DOCUMENT = _document()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = [op.ok() for op in SCHEMA.get_all_operations()]
CREATES = [
    ("post", "/v1/images/generations"),
    ("post", "/v1/tasks/batch"),
    ("post", "/api/v1/mj/generate"),
    ("post", "/api/v1/mj/generateUpscale"),
    ("post", "/api/v1/mj/generateVary"),
    ("post", "/api/v1/generateTask/{model}"),
    *[("post", f"/mj/submit/{name}") for name in ("imagine", "change", "simple-change", "action", "modal")],
    *[("post", f"/mj/submit/{name}") for name in ("blend", "retexture")],
    ("post", "/mj/task/list-by-condition"),
]


@pytest.mark.parametrize(("method", "path"), CREATES)
def test_every_create_documents_its_body_with_fields(method: str, path: str) -> None:
    operation = DOCUMENT["paths"][path][method]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    model = DOCUMENT["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert model["type"] == "object" and model["properties"], model


def test_every_dialect_route_documents_its_errors() -> None:
    envelopes = set()
    for path, item in DOCUMENT["paths"].items():
        if path in ("/healthz", "/readyz", "/metrics") or path.startswith("/media/"):  # not an API's
            continue
        for operation in item.values():
            errors = {s: r for s, r in operation["responses"].items() if s != "200"}
            assert errors, path
            assert "422" not in operation["responses"]  # openmj answers 400, never FastAPI's 422
            for response in errors.values():
                envelopes.add(response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1])
    assert envelopes == {"EvoLinkError", "KieEnvelope", "ApixoEnvelope", "SubmitResult"}


def test_the_documented_create_body_is_the_one_the_route_reads() -> None:
    from openmj.dialects.evolink.requests import CreateBody

    ref = DOCUMENT["paths"]["/v1/images/generations"]["post"]["requestBody"]["content"]
    name = ref["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(DOCUMENT["components"]["schemas"][name]["properties"]) == set(CreateBody.model_fields)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    settings_ = make_settings(tmp_path_factory.mktemp("fuzz"), run_worker=False, default_rpm=1_000_000)
    with LiveServer(settings_, None) as live:
        yield live, live.create_key(credits=10**9, concurrency=10**6)


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_request_from_the_openapi_gets_a_server_error(
    fuzzed: tuple[LiveServer, str], operation: Any, mode: GenerationMode
) -> None:
    live, key = fuzzed

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy(generation_mode=mode))
        # schemathesis serialises the case (bodies of any type, odd headers) and sends it itself
        r = case.call(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert r.status_code < 500, (case.method, case.formatted_path, case.body, r.text[:500])

    try:
        run()
    except Unsatisfiable:
        # every string is a valid task id: some operations have no invalid request to generate
        assert mode is GenerationMode.NEGATIVE
        pytest.skip(f"the OpenAPI allows no invalid request for {operation.label}")
