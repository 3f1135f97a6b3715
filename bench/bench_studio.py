"""The studio's first load in headless Chromium: bytes transferred and time to interactive.

Each run opens `/` (and `/admin`) in a fresh browser context (empty cache) against a real openmj
on loopback (API only: the page's load does not touch the worker) and reads:

- bytes: headers + bodies of every response, as Chromium counted them on the wire;
- interactive: `performance.now()` when the page's module has wired every control (the page sets
  `window.studioReadyAt`), i.e. milliseconds from the start of navigation.

Run (Debian's chromium; tests/browser.py installs it when missing):

    python bench/bench_studio.py [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import first_load, launch  # noqa: E402
from tests.live import LiveServer, make_settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory() as tmp,
        LiveServer(make_settings(Path(tmp), run_worker=False), None) as live,
        sync_playwright() as p,
    ):
        browser = launch(p)
        print("| page | bytes (first load) | requests | interactive, median (ms) | max (ms) |")
        print("|---|---|---|---|---|")
        for path in ("/", "/admin"):
            loads = [first_load(browser, live.url + path) for _ in range(args.runs)]
            times = [x.interactive_ms for x in loads]
            print(
                f"| `{path}` | {loads[0].bytes:,} | {len(loads[0].urls)} | "
                f"{statistics.median(times):.0f} | {max(times):.0f} |"
            )
        browser.close()


if __name__ == "__main__":
    main()
