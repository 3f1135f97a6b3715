"""Headless Debian Chromium for the studio's tests, driven by Playwright (no browser download:
`playwright install` is never run; the Debian package is installed here when it is missing)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}  # an iPhone 12-sized screen


def ensure_chromium() -> Path:
    """/usr/bin/chromium, installed from Debian's archive on a fresh machine (CI runs as root)."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None:
        raise RuntimeError("chromium is missing and there is no apt-get to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # parallel test workers may both install: the second waits for dpkg's lock instead of failing
    wait = ["-o", "DPkg::Lock::Timeout=600"]
    install = [apt, *wait, "install", "-y", "--no-install-recommends", "chromium"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        # a fresh image has no package lists yet
        subprocess.run([apt, *wait, "update"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    if not CHROMIUM.exists():
        raise RuntimeError("apt-get installed chromium but /usr/bin/chromium is not there")
    return CHROMIUM


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(ensure_chromium()), args=ARGS)


@dataclass
class FirstLoad:
    """What a first visit of a page cost: bytes over the wire (headers and bodies, as Chromium
    counted them), the URLs fetched and the page's own time to interactive (ms)."""

    bytes: int = 0
    urls: list[str] = field(default_factory=list)
    interactive_ms: float = 0.0


def first_load(browser: Any, url: str, viewport: dict[str, int] = DESKTOP) -> FirstLoad:
    """Open `url` in a fresh context (empty cache) and wait until the page says it is ready."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    seen = FirstLoad()

    def finished(request: Any) -> None:
        sizes = request.sizes()
        seen.bytes += sizes["responseHeadersSize"] + sizes["responseBodySize"]
        seen.urls.append(request.url)

    page.on("requestfinished", finished)
    page.goto(url)
    page.wait_for_function("() => document.documentElement.dataset.ready === '1'")
    page.wait_for_load_state("networkidle")
    seen.interactive_ms = float(page.evaluate("window.studioReadyAt || performance.now()"))
    context.close()
    return seen
