"""bench/gpu.py keeps working before a GPU exists: its --tiny mode builds every family from the
carried real configs (scaled down) and runs the bare pipeline and openmj's engine on CPU. The
numbers mean nothing here; the test checks the script runs and reports both sides for each preset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_gpu_bench_tiny_mode_reports_every_preset(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu.py"), "--tiny", "--runs", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=540,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    data = json.loads(out.read_text())
    rows = data["results"]
    names = {r["preset"] for r in rows}
    assert names == {"sdxl-lightning", "flux2-klein-4b", "z-image-turbo", "flux1-schnell"}
    for r in rows:
        assert r["error"] == "" and r["engine_install"] == "adopt", r
        assert r["bare_s"] > 0 and r["openmj_s"] > 0 and r["images"] == 4, r
    assert (ROOT / "bench" / "gpu_configs" / "flux1-schnell" / "transformer" / "config.json").exists()
