"""The deployment files of docs/deployment.md (deploy/): what can be checked without Docker.
The compose file parses and wires what the docs say (readiness checks, one env file, the start
order); every setting in openmj.env is one openmj knows; every command line the files run is
accepted by `openmj`; the systemd units pass `systemd-analyze verify`; the docs name only files
that exist."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from openmj.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())  # type: ignore[no-any-return]


def openmj_services() -> dict:  # type: ignore[type-arg]
    return {n: s for n, s in compose()["services"].items() if str(s.get("image", "")).startswith("openmj")}


def accepted(args: list[str]) -> subprocess.CompletedProcess[str]:
    """`openmj ARGS --help`: exits 0 only when every option before it exists."""
    return subprocess.run(
        [sys.executable, "-m", "openmj.cli", *args, "--help"], capture_output=True, text=True, timeout=60
    )


def test_the_compose_file_wires_readiness_env_and_start_order() -> None:
    services = compose()["services"]
    assert {"postgres", "seaweedfs", "bucket", "api-1", "api-2", "worker-1", "worker-2", "caddy"} <= set(
        services
    )
    ours = openmj_services()
    assert set(ours) == {"api-1", "api-2", "worker-1", "worker-2"}
    for name, svc in ours.items():
        assert svc["env_file"] == "openmj.env", name
        assert int(svc["stop_grace_period"].rstrip("s")) > 25 + 10 + 20  # drain, notice, open requests
        if name.startswith("api"):
            assert svc["command"][:2] == ["serve", "--no-worker"]
            assert "/readyz" in " ".join(svc["healthcheck"]["test"])
        else:
            assert svc["command"][0] == "worker"
    assert services["api-2"]["depends_on"]["api-1"]["condition"] == "service_healthy"  # migrations first
    assert services["api-1"]["depends_on"]["bucket"]["condition"] == "service_completed_successfully"
    assert services["caddy"]["depends_on"] == {
        "api-1": {"condition": "service_healthy"},
        "api-2": {"condition": "service_healthy"},
    }


def test_every_command_line_is_one_openmj_accepts() -> None:
    lines = [svc["command"] for svc in openmj_services().values()]
    for unit in (DEPLOY / "systemd").glob("openmj-*.service"):
        found = re.search(r"^ExecStart=\S+/openmj (.+)$", unit.read_text(), re.M)
        assert found, unit
        lines.append(shlex.split(found.group(1).replace("%i", "0")))
    assert len(lines) == 6
    for args in lines:
        done = accepted(args)
        assert done.returncode == 0, (args, done.stderr)


def test_every_setting_in_the_env_file_is_known() -> None:
    known = {f"OPENMJ_{name.upper()}" for name in Settings.model_fields}
    names = [
        line.split("=", 1)[0]
        for line in (DEPLOY / "openmj.env").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert "OPENMJ_DATABASE_URL" in names and "OPENMJ_SECRET_KEY" in names and "OPENMJ_MEDIA_URL" in names
    assert [n for n in names if n not in known] == []


def test_the_proxy_and_the_image_check_readiness() -> None:
    caddy = (DEPLOY / "Caddyfile").read_text()
    assert "health_uri /readyz" in caddy and "api-1:8000 api-2:8000" in caddy
    assert "/readyz" in (DEPLOY / "Dockerfile").read_text()
    assert "upstream openmj_api" in (DEPLOY / "nginx" / "openmj.conf").read_text()
    identities = json.loads((DEPLOY / "seaweedfs" / "s3.json").read_text())["identities"]
    assert {i["name"] for i in identities} == {"openmj", "admin"}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_units_verify(tmp_path: Path) -> None:
    """Verified as installed: the binaries they name pointed at this machine's, one instance each."""
    bin_dir = Path(sys.executable).parent
    names = []
    for unit in (DEPLOY / "systemd").glob("*.service"):
        text = unit.read_text().replace("/opt/openmj/.venv/bin/", f"{bin_dir}/")
        text = text.replace("/usr/local/bin/weed", str(bin_dir / "weed"))
        name = unit.name.replace("@.", "@0.")
        (tmp_path / name).write_text(text)
        names.append(name)
    assert len(names) == 3
    done = subprocess.run(
        ["systemd-analyze", "verify", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if any(n in line for n in names)]
    assert done.returncode == 0 and complaints == [], done.stdout + done.stderr


def test_the_docs_name_only_files_that_exist() -> None:
    named = set(re.findall(r"deploy/[\w./@*-]*[\w@*]", (ROOT / "docs" / "deployment.md").read_text()))
    assert len(named) >= 6
    assert sorted(n for n in named if not list(ROOT.glob(n))) == []
