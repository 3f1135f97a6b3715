"""Issue 2: the real `openmj` command: first start, keys while serving, SIGKILL mid-task, no torch."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import wait_task
from tests.http_client import HTTP
from tests.live import ServerProcess, free_port, wait_healthy, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openmj.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )


def test_sigkill_mid_generation_loses_nothing(tmp_path: Path, tiny_dir: Path) -> None:
    data = tmp_path / "data"
    # a short lease so the restarted server reclaims the task quickly
    env = {"OPENMJ_LEASE_SECONDS": "3"}
    first = ServerProcess(data, str(tiny_dir), **env).start()
    try:
        key = (
            cli("keys", "create", "--data-dir", str(data), "--credits", "50").stdout.strip().splitlines()[-1]
        )
        headers = {"Authorization": f"Bearer {key}"}
        # a bigger image so generation is long enough to be killed in the middle of it
        r = HTTP.post(
            f"{first.url}/v1/images/generations",
            json={"model": "mj-v7", "prompt": "a lighthouse at dusk --ar 16:9 --seed 42 --q 4"},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        task_id = r.json()["id"]

        def processing() -> dict[str, Any] | None:
            body: dict[str, Any] = HTTP.get(f"{first.url}/v1/tasks/{task_id}", headers=headers).json()
            return body if body["status"] == "processing" else None

        body = wait_until(processing, 60, 0.05, "the task to start")
    finally:
        first.kill()  # SIGKILL: no shutdown handler runs

    second = ServerProcess(data, str(tiny_dir), port=first.port, **env).start()
    try:
        with httpx.Client(base_url=second.url, headers=headers) as client:
            body = wait_task(client, task_id, 180)
        assert body["status"] == "completed", body
        assert len(body["results"]) == 4
        for url in body["results"]:
            assert HTTP.get(url).status_code == 200
        # charged once: 50 − one fast imagine
        credits = HTTP.get(f"{second.url}/v1/credits", headers=headers).json()["data"]["token"]
        assert credits["remaining_credits"] == 50 - body["usage"]["credits_reserved"]
    finally:
        second.stop()


def test_first_start_prints_a_key_and_keys_create_works_while_serving(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, "tiny")
    server.start()
    try:
        log = server.log.read_text()
        first_key = next(line.strip() for line in log.splitlines() if line.strip().startswith("sk-"))
        r = HTTP.get(f"{server.url}/v1/credits", headers={"Authorization": f"Bearer {first_key}"})
        assert r.status_code == 200
        assert r.json()["data"]["token"]["remaining_credits"] == 1000

        out = cli("keys", "create", "--data-dir", str(data), "--credits", "5")
        assert out.returncode == 0, out.stderr
        new_key = out.stdout.strip().splitlines()[-1]
        assert new_key.startswith("sk-") and len(out.stdout.strip().splitlines()) == 1
        r = HTTP.get(f"{server.url}/v1/credits", headers={"Authorization": f"Bearer {new_key}"})
        assert r.json()["data"]["token"]["remaining_credits"] == 5
        # the key is stored hashed: the secret is nowhere in the database file
        db = (data / "openmj.db").read_bytes() + (data / "openmj.db-wal").read_bytes()
        assert new_key.encode() not in db and first_key.encode() not in db
    finally:
        server.stop()
    # a second start on the same data dir does not print a new key
    again = ServerProcess(data, "tiny", port=server.port).start()
    again.stop()
    assert again.log.read_text().count("Created a first API key") == 1


def test_unloadable_model_gives_a_clear_message(tmp_path: Path) -> None:
    port = free_port()
    out = cli(
        "serve", "--data-dir", str(tmp_path), "--port", str(port), "--model", "nobody/no-such-model-xyz"
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "nobody/no-such-model-xyz" in out.stderr
    assert "--model tiny" in out.stderr


def test_prompt_parse_command() -> None:
    ok = cli("prompt", "parse", "a cat --ar 16:9 --s 250")
    assert ok.returncode == 0
    assert '"ar": "16:9"' in ok.stdout and '"stylize": 250' in ok.stdout
    bad = cli("prompt", "parse", "a cat --ar 1.5:1")
    assert bad.returncode == 1
    assert '"ok": false' in bad.stdout


NO_TORCH = """
import sys
import threading
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'diffusers', 'transformers'):
            raise ImportError('blocked for this test: ' + name)
sys.meta_path.insert(0, Block())
from openmj.cli import app
app(['serve', '--no-worker', '--data-dir', sys.argv[1], '--port', sys.argv[2]])
"""


def test_api_serves_without_torch(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", NO_TORCH, str(tmp_path), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", 60, proc)
        key = (
            cli("keys", "create", "--data-dir", str(tmp_path), "--credits", "10")
            .stdout.strip()
            .splitlines()[-1]
        )
        r = HTTP.post(
            f"http://127.0.0.1:{port}/v1/images/generations",
            json={"model": "mj-v7", "prompt": "a cat"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "pending"
    finally:
        proc.terminate()
        proc.wait(30)


def test_sigkill_during_a_create_load_loses_no_answered_task(tmp_path: Path) -> None:
    """Creates from eight clients at once; the server is SIGKILLed after the 60th answer. Every
    answered task is still there after a restart, and each key's ledger equals its balance."""
    data = tmp_path / "data"
    first = ServerProcess(data, "tiny", args=("--no-worker",)).start()
    key = (
        cli("keys", "create", "--data-dir", str(data), "--credits", "100000").stdout.strip().splitlines()[-1]
    )
    headers = {"Authorization": f"Bearer {key}"}
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=first.url, headers=headers, timeout=30) as c:
            while not stop.is_set():
                try:
                    r = c.post("/v1/images/generations", json={"model": "mj-v7", "prompt": "a lighthouse"})
                except httpx.HTTPError:
                    return  # the server died under us: the request may or may not have been committed
                if r.status_code == 200:
                    with lock:
                        answered.append(r.json()["id"])

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(answered) >= 60, 120, 0.01, "60 answered creates")
        first.kill()  # SIGKILL in the middle of the load
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    second = ServerProcess(data, "tiny", port=first.port, args=("--no-worker",)).start()
    try:
        with httpx.Client(base_url=second.url, headers=headers, timeout=30) as c:
            for task_id in answered:
                r = c.get(f"/v1/tasks/{task_id}")
                assert r.status_code == 200 and r.json()["status"] == "pending", (task_id, r.text)
            total = c.get("/v1/tasks", params={"page_size": 1}).json()["total"]
            balance = c.get("/v1/credits").json()["data"]["user"]["remaining_credits"]
    finally:
        second.stop()
    assert total >= len(answered)  # a create committed but never answered exists and is charged too
    db = sqlite3.connect(data / "openmj.db")
    (owner,) = db.execute("SELECT id FROM api_keys WHERE prefix = ?", (key[:10],)).fetchone()
    (ledger,) = db.execute("SELECT sum(amount) FROM ledger WHERE key_id = ?", (owner,)).fetchone()
    (reserved,) = db.execute("SELECT sum(credits_reserved) FROM tasks WHERE owner = ?", (owner,)).fetchone()
    (unfinished,) = db.execute("SELECT unfinished FROM api_keys WHERE id = ?", (owner,)).fetchone()
    assert ledger == balance == 100000 - reserved
    assert unfinished == total  # the concurrency counter agrees with the tasks
