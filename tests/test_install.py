"""The install is whole (issue 11): with only `openmj[local]` installed, `openmj serve --model
tiny` builds the offline model and answers an EvoLink imagine, as the README promises."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.extras_env import build, closure
from tests.live import TEST_SECRET, free_port, wait_healthy, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_the_local_extra_is_closed_under_what_tiny_needs() -> None:
    local = closure("openmj", ["local"])
    assert {"torch", "diffusers", "transformers", "onnxruntime", "onnx"} <= local
    assert not {"pytest", "schemathesis", "hypothesis", "mypy", "ruff"} & local


def test_local_extra_alone_serves_the_tiny_model(tmp_path: Path) -> None:
    python = build(tmp_path / "venv", ["local"])
    dev_only = "('pytest', 'hypothesis', 'nudenet')"
    probe = f"import importlib.util as u; print([m for m in {dev_only} if u.find_spec(m)])"
    assert subprocess.run([str(python), "-c", probe], capture_output=True, text=True).stdout.strip() == "[]"
    port, data = free_port(), tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env |= {"HF_HUB_OFFLINE": "1", "OPENMJ_SECRET_KEY": TEST_SECRET, "OPENMJ_SEED": "1"}
    log = (tmp_path / "server.log").open("wb")
    cmd = [
        str(python),
        "-m",
        "openmj.cli",
        "serve",
        "--model",
        "tiny",
        "--data-dir",
        str(data),
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_healthy(f"http://127.0.0.1:{port}", 600, proc)
        except Exception:
            raise AssertionError((tmp_path / "server.log").read_text()[-3000:]) from None
        key = (tmp_path / "server.log").read_text()
        key = next(w for w in key.split() if w.startswith("sk-"))  # the first start prints a key
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}
        ) as c:
            task = c.post(
                "/v1/images/generations", json={"model": "mj-v7", "prompt": "a lighthouse --ar 16:9"}
            )
            assert task.status_code == 200, task.text
            done = wait_until(lambda: _final(c, task.json()["id"]), timeout=300)
        assert done["status"] == "completed" and len(done["results"]) == 4, done
        assert all(d["width"] > d["height"] for d in done["result_data"])  # 16:9
    finally:
        proc.terminate()
        proc.wait(60)


def _final(client: httpx.Client, task_id: str) -> dict | None:
    body = client.get(f"/v1/tasks/{task_id}").json()
    return body if body["status"] in ("completed", "failed") else None
