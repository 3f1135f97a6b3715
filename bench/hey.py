"""`hey` (Debian package hey), the load generator: a separate Go process, so the load costs the
server nothing; installed on first use when missing."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


def ensure_hey() -> str:
    found = shutil.which("hey")
    if found is None and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "hey"], capture_output=True, timeout=600)
        found = shutil.which("hey")
    if found is None:
        raise RuntimeError("the benchmark needs hey: apt-get install hey")
    return found


@dataclass
class HeyResult:
    rps: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0

    @property
    def bad(self) -> int:
        """Answers that are not 200, plus transport errors."""
        return self.errors + sum(n for s, n in self.statuses.items() if s != 200)

    def summary(self) -> dict[str, float]:
        return {"rps": self.rps, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "bad": self.bad}


def parse(output: str) -> HeyResult:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])  # type: ignore[index]
    pct = {int(m[1]): float(m[2]) * 1000 for m in re.finditer(r"(\d+)%+ in ([\d.]+) secs", output)}
    statuses = {int(m[1]): int(m[2]) for m in re.finditer(r"\[(\d{3})\]\s+(\d+) responses", output)}
    errors = 0
    if "Error distribution:" in output:
        tail = output.split("Error distribution:", 1)[1]
        errors = sum(int(m[1]) for m in re.finditer(r"\[(\d+)\]\s", tail))
    return HeyResult(rps, pct.get(50, float("nan")), pct.get(99, float("nan")), statuses, errors)


def run(
    url: str, *, seconds: float, concurrency: int, method: str = "GET", body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> HeyResult:  # fmt: skip
    cmd = [ensure_hey(), "-z", f"{seconds:g}s", "-c", str(concurrency), "-m", method]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    with tempfile.TemporaryDirectory() as tmp:
        if body is not None:
            path = Path(tmp) / "body.json"
            path.write_bytes(body)
            cmd += ["-D", str(path), "-T", "application/json"]
        out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode != 0:
        raise RuntimeError(f"hey failed: {out.stderr[-2000:]}")
    return parse(out.stdout)
