"""The client commands of `openmj` (issue 17), run as a real process against a real openmj:
imagine/upscale/vary/zoom/pan/status/balance, --wait with a progress bar, --out files named by
task id and image number, --json, the key and URL from options or the environment, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.http_client import HTTP
from tests.live import LiveServer
from tests.loopback import Loopback

FAST = ("--interval", "0.05")


def openmj(
    *args: str, key: str | None = None, url: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENMJ_")}
    clean |= {"OPENMJ_API_KEY": key or "", "OPENMJ_BASE_URL": url or "", "COLUMNS": "120", **env}
    clean = {k: v for k, v in clean.items() if v}
    return subprocess.run(
        [sys.executable, "-m", "openmj.cli", *args], env=clean, capture_output=True, text=True, timeout=300
    )


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout)


def test_imagine_wait_out_writes_four_3_2_pngs_with_a_progress_bar(
    server: LiveServer, tmp_path: Path
) -> None:
    """The issue's "must show", on the real tiny model."""
    key = server.create_key(credits=100)
    out = tmp_path / "out"
    done = openmj("imagine", "a red fox --ar 3:2", "--wait", "--out", str(out), key=key, url=server.url)
    assert done.returncode == 0, done.stderr
    files = [Path(line) for line in done.stdout.split()]
    assert len(files) == 4 and sorted(files) == sorted(out.iterdir())
    task_id = files[0].name.rsplit("_", 1)[0]
    assert [f.name for f in files] == [f"{task_id}_{n}.png" for n in (1, 2, 3, 4)]
    for f in files:
        with Image.open(f) as im:
            assert im.format == "PNG" and abs(im.width / im.height - 1.5) < 0.05
    assert "100%" in done.stderr and task_id in done.stderr  # rich's bar, on stderr


def test_the_commands_end_to_end_with_json(fake_server: LiveServer, tmp_path: Path) -> None:
    key = fake_server.create_key(credits=1000)
    env = {"key": key, "url": fake_server.url}
    submitted = as_json(openmj("imagine", "a lighthouse at dusk --ar 16:9", "--json", **env))
    assert submitted["status"] == "pending" and submitted["model"] == "mj-v7"
    task_id = submitted["id"]
    grid = as_json(openmj("imagine", "a lighthouse --ar 16:9", "--wait", "--json", *FAST, **env))
    assert grid["status"] == "completed" and len(grid["results"]) == 4
    gid = grid["id"]

    up = openmj("upscale", gid, "2", "--json", "--out", str(tmp_path), *FAST, **env)
    assert up.returncode == 0, up.stderr
    upscaled = as_json(up)
    assert upscaled["model"] == "mj-v7-upscale" and upscaled["files"] == [
        str(tmp_path / f"{upscaled['id']}_1.png")
    ]
    source = grid["result_data"][1]  # U2 is image_number 1
    with Image.open(upscaled["files"][0]) as im:
        assert im.size == (source["width"] * 2, source["height"] * 2)

    strong = as_json(openmj("vary", gid, "1", "--strong", "--wait", "--json", *FAST, **env))
    assert strong["model"] == "mj-v7-variation" and len(strong["results"]) == 4
    zoomed = as_json(openmj("zoom", gid, "1", "--scale", "2", "--wait", "--json", *FAST, **env))
    first = grid["result_data"][0]
    assert (zoomed["result_data"][0]["width"], zoomed["result_data"][0]["height"]) == (
        first["width"],
        first["height"],
    )
    panned = as_json(openmj("pan", gid, "1", "--direction", "left", "--wait", "--json", *FAST, **env))
    assert panned["result_data"][0]["width"] > first["width"]

    links = openmj("status", gid, **env)
    assert links.returncode == 0
    lines = links.stdout.splitlines()
    assert lines[0] == f"{gid}\tcompleted\t100%" and lines[1:] == grid["results"]
    assert all(HTTP.get(u).status_code == 200 for u in lines[1:])

    plain = openmj("imagine", "a fox", **env)  # no --wait: the id alone on stdout, for $(…)
    assert plain.returncode == 0 and plain.stdout.strip().startswith("task-unified-")

    wallet = as_json(openmj("balance", "--json", **env))
    assert wallet["used_credits"] >= 8 * 5 + 4  # imagines, vary, zoom, pan at 8; the upscale at 4
    assert wallet["remaining_credits"] == 1000 - wallet["used_credits"]
    assert (
        openmj("balance", **env).stdout.strip()
        == f"{wallet['remaining_credits']:g} credits left ({wallet['used_credits']:g} used)"
    )
    assert openmj("status", task_id, "--json", **env).returncode in (0, 8)


def test_key_and_url_options_win_over_the_environment(fake_server: LiveServer) -> None:
    key = fake_server.create_key(credits=7)
    done = openmj(
        "balance", "--key", key, "--base-url", fake_server.url, key="sk-wrong", url="http://127.0.0.1:9"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "7 credits left (0 used)"


def test_exit_codes_scripts_can_use(api_server: LiveServer) -> None:
    key = api_server.create_key(credits=20)
    env = {"key": key, "url": api_server.url}

    bad = openmj("imagine", "a fox --ar 3:0", **env)
    assert bad.returncode == 3
    assert "Invalid parameter: Invalid aspect ratio `3:0` (HTTP 400 invalid_request)" in bad.stderr
    refused = as_json(openmj("imagine", "a fox --chaos 500", "--json", **env))
    assert refused["error"]["status"] == 400 and refused["error"]["code"] == "invalid_request"

    assert openmj("balance", key="sk-nobody", url=api_server.url).returncode == 4
    assert openmj("balance", url=api_server.url).returncode == 2  # no key at all
    assert openmj("status", "task-unified-1700000000-abcdefgh", **env).returncode == 3  # not found
    for n in ("0", "5"):  # N is 1–4, as on the buttons
        assert openmj("upscale", "task-unified-1700000000-abcdefgh", n, **env).returncode == 2

    pending = openmj("imagine", "never rendered: no worker here", **env).stdout.strip()
    assert openmj("status", pending, **env).returncode == 8
    late = openmj("imagine", "again", "--wait", "--timeout", "0.3", *FAST, **env)
    assert late.returncode == 8 and "still pending" in late.stderr
    assert openmj("imagine", "one more", **env).returncode == 5  # 4 credits left: 16 reserved
    with httpx.Client(base_url=api_server.url, headers={"Authorization": f"Bearer {key}"}) as c:
        assert c.post(f"/v1/tasks/{pending}/cancel").status_code == 200
    cancelled = openmj("status", pending, **env)
    assert cancelled.returncode == 1 and "request_cancelled" in cancelled.stdout


def test_a_server_that_stays_unavailable_is_exit_7() -> None:
    with Loopback(lambda h, s: h.send(503, b"down", "text/plain", Retry_After="0")) as down:
        done = openmj("balance", key="sk-x", url=down.url(""))
    assert done.returncode == 7 and "down" in done.stderr
    assert len(down.hits("/v1/credits")) == 6  # the first try and five retries
