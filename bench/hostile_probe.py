"""Issue 10's "must show", against a real `openmj serve --model tiny` in a fresh data dir.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/hostile_probe.py [--fuzz-seconds 120]

Thin PNGs (200000×1, 20000×1, 1×40000) through all four dialects while the server's RSS is
sampled; `"\\ud800"` in stored fields; the 500-class inputs of the issue; NaN; then schemathesis
over /openapi.json for --fuzz-seconds. Prints one line per check and exits non-zero on a failure.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.images import ImageServer  # noqa: E402
from tests.live import ServerProcess, free_port  # noqa: E402

FAILURES: list[str] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    if not ok:
        FAILURES.append(name)


def rss_mb(pid: int) -> float:
    total = 0
    for child in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        out = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(c) for c in out]


def thin(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size, 200).save(buf, "PNG")
    return buf.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fuzz-seconds", type=int, default=120)
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="openmj-probe-"))
    server = ServerProcess(data, "tiny", port=free_port()).start(timeout=300)
    assert server.proc is not None
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb(server.proc.pid))  # type: ignore[union-attr]
            time.sleep(0.2)

    threading.Thread(target=sample, daemon=True).start()
    images = ImageServer()
    try:
        cli = [sys.executable, "-m", "openmj.cli", "keys", "create", "--data-dir", str(data)]
        created = subprocess.run(
            [*cli, "--credits", "100000"], capture_output=True, text=True, check=True, env=server.env
        )
        key = created.stdout.strip().splitlines()[-1]
        client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        probe_thin_images(client, images)
        probe_stored_strings(client)
        probe_server_errors(client, server.url)
        check("server still answers", client.get("/healthz").status_code == 200)
        check("peak RSS under 2 GB", peak[0] < 2048, f"{peak[0]:.0f} MB")
        fuzz(server.url, key, args.fuzz_seconds)
    finally:
        stop.set()
        images.close()
        server.stop()
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


def probe_thin_images(client: httpx.Client, images: ImageServer) -> None:
    for name, size in {"200000x1": (200_000, 1), "20000x1": (20_000, 1), "1x40000": (1, 40_000)}.items():
        png = thin(size)
        url = images.add(f"/{name}.png", png)
        uri = "data:image/png;base64," + base64.b64encode(png).decode()
        mj = client.post("/mj/submit/imagine", json={"prompt": "x", "base64Array": [uri]}).json()
        check(f"mjproxy base64Array {name} refused at submit", mj["code"] == 4, mj["description"][:80])
        kie_body = {"taskType": "mj_img2img", "prompt": "x", "fileUrls": [url]}
        kie = client.post("/api/v1/mj/generate", json=kie_body)
        apixo = client.post(
            "/api/v1/generateTask/midjourney",
            json={"input": {"mode": "image-to-image", "prompt": "x", "image_urls": [url]}},
        )
        evo = client.post("/v1/images/generations", json={"model": "mj-v7", "prompt": f"a cat --sref {url}"})
        ids = [kie.json()["data"]["taskId"], apixo.json()["data"]["taskId"], evo.json()["id"]]
        for dialect, task_id in zip(("kie", "apixo", "evolink"), ids, strict=True):
            done = wait(client, task_id)
            check(
                f"{dialect} URL {name} fails cleanly, refunded",
                done["status"] == "failed" and done["usage"]["credits_used"] == 0,
                done.get("error", {}).get("message", "")[:90],
            )


def wait(client: httpx.Client, task_id: str) -> dict[str, object]:
    for _ in range(1200):
        body = client.get(f"/v1/tasks/{task_id}").json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise TimeoutError(task_id)


def probe_stored_strings(client: httpx.Client) -> None:
    raw = b'{"prompt": "a cat", "state": "\\ud800"}'
    r = client.post("/mj/submit/imagine", content=raw, headers={"Content-Type": "application/json"})
    check("lone surrogate in mjproxy state refused", r.json()["code"] == 4, r.json()["description"][:60])
    raw = b'{"taskType": "mj_txt2img", "prompt": "a cat", "waterMark": "\\ud800"}'
    r = client.post("/api/v1/mj/generate", content=raw, headers={"Content-Type": "application/json"})
    check("lone surrogate in kie waterMark refused", r.json()["code"] == 400, r.json()["msg"][:60])
    reads = [client.get("/mj/task/list"), client.get("/mj/task/queue"), client.get("/v1/tasks")]
    check("lists still render", all(x.status_code == 200 for x in reads))
    raw = b'{"prompt": "a cat", "state": NaN}'
    r = client.post("/mj/submit/imagine", content=raw, headers={"Content-Type": "application/json"})
    check("NaN refused", r.json()["code"] == 4)


def probe_server_errors(client: httpx.Client, url: str) -> None:
    json_headers = {"Content-Type": "application/json"}
    bodies = {
        "surrogate in an EvoLink prompt": b'{"model": "mj-v7", "prompt": "a \\udc00 cat"}',
        "5000-digit integer": b'{"model": "mj-v7", "prompt": "a cat", "n": ' + b"9" * 5000 + b"}",
        "JSON nested 10000 deep": b'{"model": "mj-v7", "x": ' + b"[" * 10000 + b"]" * 10000 + b"}",
    }
    for name, body in bodies.items():
        r = client.post("/v1/images/generations", content=body, headers=json_headers)
        check(f"{name} → 4xx", 400 <= r.status_code < 500, str(r.status_code))
    for path in ("/v1/images/generations", "/api/v1/mj/generate", "/mj/submit/imagine"):
        r = client.post(path, content=b'{"prompt": "x", "n": ' + b"1" * 5000 + b"}", headers=json_headers)
        check(f"5000-digit integer on {path} → not 5xx", r.status_code < 500, str(r.status_code))
    r = client.get("/v1/tasks", params={"page": "99999999999999999999"})
    check("page=99999999999999999999 → 4xx", 400 <= r.status_code < 500, str(r.status_code))
    r = httpx.get(f"{url}/media/x/0.png", params={"exp": "9" * 5000, "kid": "k", "sig": "s"})
    check("5000-digit exp → 4xx", 400 <= r.status_code < 500, str(r.status_code))


def fuzz(url: str, key: str, seconds: int) -> None:
    if seconds <= 0:
        return
    cmd = [
        str(Path(sys.executable).with_name("schemathesis")), "run", f"{url}/openapi.json",
        "--checks", "not_a_server_error", "-H", f"Authorization: Bearer {key}",
        "--max-time", str(seconds), "--mode", "all",
    ]  # fmt: skip
    started = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True)
    tail = "\n".join(out.stdout.strip().splitlines()[-12:])
    print(tail)
    took = time.monotonic() - started
    check(f"schemathesis {took:.0f} s: no 5xx", out.returncode == 0, json.dumps(out.returncode))


if __name__ == "__main__":
    raise SystemExit(main())
