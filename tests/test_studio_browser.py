"""The web studio (/) and the admin view (/admin) in a real browser: headless Debian Chromium
driven by Playwright, against a real openmj on the tiny model (real diffusers, CPU).

What a person sees is what is asserted: the inline prompt error, progress reaching 100 %, four
16:9 images, the upscale, the vary-region result (and its pixels: changed where painted, kept
elsewhere), the gallery's parent and children, the admin's refusal and the credits granted, as
the API then reports them. Screenshots go to $OPENMJ_STUDIO_SHOTS (docs/img/ when refreshing the
README's) or a temporary folder.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser import DESKTOP, PHONE, first_load, launch
from tests.fake_engine import FakeEngine
from tests.live import LiveServer, make_settings

pytestmark = pytest.mark.slow

ADMIN_TOKEN = "admin-token-for-tests"
FIRST_LOAD_BUDGET = 300_000  # bytes, the budget for the studio's first load
WAIT_MS = 180_000  # the longest a render may take on a slow shared CI machine (not a speed assert)


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, tiny_engine: Any) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("data-studio"), admin_token=ADMIN_TOKEN)
    with LiveServer(settings, tiny_engine) as live:
        yield live


@pytest.fixture(scope="module")
def video_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server that serves a video model, its worker on the fake engine: for the Animate buttons
    and the clips' shape (what the clips look like is tests/test_video.py's business)."""
    settings = make_settings(tmp_path_factory.mktemp("data-studio-video"), video_model="tiny-video")
    with LiveServer(settings, FakeEngine()) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("OPENMJ_STUDIO_SHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("shots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_page(browser: Any, viewport: dict[str, int] = DESKTOP) -> Any:
    """A page in a fresh context, patient enough for a loaded CI machine (no speed asserted).
    `page.problems` collects its script errors and console errors (a CSP refusal is one)."""
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.problems = []
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    return page


def open_studio(browser: Any, studio: LiveServer, key: str | None, viewport: dict[str, int] = DESKTOP) -> Any:
    page = new_page(browser, viewport)
    page.goto(studio.url + "/")
    page.wait_for_function("() => document.documentElement.dataset.ready === '1'")
    if key is not None:
        page.get_by_label("API key", exact=True).fill(key)
        page.get_by_role("button", name="Save the API key in this browser").click()
        page.wait_for_function("() => document.getElementById('key-state').textContent.includes('saved')")
    return page


def wait_for_task(page: Any, action: str) -> dict[str, Any]:
    """Wait until the task panel shows a finished `action` task at 100 %; its Task JSON."""
    page.wait_for_function(
        "([a]) => { const t = window.studioShown(); return t && t.action === a && "
        "document.getElementById('progress-text').textContent === '100%'; }",
        arg=[action],
        timeout=WAIT_MS,
    )
    page.wait_for_function(  # and until its pictures have loaded
        "() => [...document.querySelectorAll('#images img')].every(i => i.complete && i.naturalWidth > 0)",
        timeout=WAIT_MS,
    )
    task: dict[str, Any] = page.evaluate("window.studioShown()")
    return task


def shoot(page: Any, path: Path, full_page: bool = True) -> None:
    """A screenshot once every picture on the page has loaded (the gallery's load lazily)."""
    page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(i => { i.loading = 'eager'; })")
    page.wait_for_function(
        "() => [...document.images].every(i => !i.getAttribute('src') || (i.complete && i.naturalWidth > 0))",
        timeout=WAIT_MS,
    )
    page.screenshot(path=str(path), full_page=full_page)


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button, canvas')]
  .filter(e => !(e.getAttribute('aria-label') || (e.labels && e.labels.length)
                 || (e.tagName === 'BUTTON' && e.textContent.trim())))
  .map(e => e.outerHTML)"""


def unlabelled(page: Any) -> list[str]:
    """The controls on the page that a screen reader could not name."""
    found: list[str] = page.evaluate(UNLABELLED)
    return found


def picture(client: httpx.Client, url: str) -> Image.Image:
    r = client.get(url)
    assert r.status_code == 200, r.text
    return Image.open(io.BytesIO(r.content)).convert("RGB")


def test_first_load_is_small_and_served_by_openmj(
    browser: Any, studio: LiveServer, record_property: Any
) -> None:
    load = first_load(browser, studio.url + "/")
    record_property("interactive_ms", load.interactive_ms)  # reported, not asserted (machine speed)
    assert load.bytes < FIRST_LOAD_BUDGET, load
    assert load.urls and all(u.startswith(studio.url + "/") for u in load.urls), load.urls  # no CDN, no font
    assert {u.removeprefix(studio.url) for u in load.urls} >= {"/", "/studio/static/studio.js"}


def test_an_invalid_parameter_is_shown_inline_before_submit(browser: Any, studio: LiveServer) -> None:
    key = studio.create_key()
    page = open_studio(browser, studio, key)
    page.get_by_label("Prompt", exact=True).fill("a lighthouse at dusk --chaos 500")
    error = page.locator("#prompt-error")
    page.wait_for_function("() => document.getElementById('prompt-error').textContent !== ''")
    # the message the imagine route itself gives for that prompt
    with studio.client(key) as api:
        refused = api.post("/mj/submit/imagine", json={"prompt": "a lighthouse at dusk --chaos 500"}).json()
        assert refused["code"] != 1
        assert error.text_content() == refused["description"]
        assert page.get_by_label("Prompt", exact=True).get_attribute("aria-invalid") == "true"
        page.get_by_role("button", name="Submit the prompt").click()
        page.get_by_label("Prompt", exact=True).fill("a lighthouse at dusk --chaos 50")
        page.wait_for_function("() => document.getElementById('prompt-error').textContent === ''")
        # the refused prompt was never queued (the only task is the one the API refused: none)
        assert api.get("/studio/api/tasks").json()["total"] == 0


def test_a_refusal_is_shown_as_the_api_gave_it(browser: Any, studio: LiveServer) -> None:
    key = studio.create_key(credits=0)
    page = open_studio(browser, studio, key)
    page.get_by_label("Prompt", exact=True).fill("a lighthouse at dusk")
    page.get_by_role("button", name="Submit the prompt").click()
    page.wait_for_function("() => document.getElementById('prompt-error').textContent !== ''")
    with studio.client(key) as api:
        refused = api.post("/mj/submit/imagine", json={"prompt": "a lighthouse at dusk"}).json()
    assert refused["code"] != 1 and page.locator("#prompt-error").text_content() == refused["description"]


def test_imagine_upscale_and_vary_region_in_the_browser(
    browser: Any, studio: LiveServer, shots: Path
) -> None:
    key = studio.create_key()
    page = open_studio(browser, studio, key)
    page.get_by_label("Prompt", exact=True).fill("a lighthouse at dusk --ar 16:9")
    page.get_by_role("button", name="Submit the prompt").click()
    grid = wait_for_task(page, "IMAGINE")
    images = page.locator("#images img")
    assert images.count() == 4
    sizes = images.evaluate_all("els => els.map(e => [e.naturalWidth, e.naturalHeight])")
    assert all(w > h and abs(w / h - 16 / 9) < 0.05 for w, h in sizes), sizes
    assert page.locator("#images a[download]").count() == 4
    shoot(page, shots / "studio-desktop.png")

    page.get_by_role("button", name="U2: upscale image 2").click()
    upscale = wait_for_task(page, "UPSCALE")
    assert upscale["parentId"] == grid["id"] and page.locator("#images img").count() == 1
    with studio.client(key) as api:
        second = picture(api, grid["imageUrls"][1]["url"])
        upscaled = picture(api, upscale["imageUrls"][0]["url"])
    assert upscaled.size == second.size  # U2 separates image 2 from the grid
    assert page.get_by_role("button", name="Animate (High motion)").count() == 0  # no video model here

    page.get_by_role("button", name="Vary (Region)").click()
    canvas = page.get_by_label("Mask painter: draw over the region to vary")
    canvas.wait_for()
    page.wait_for_function("() => document.getElementById('painter-canvas').width > 0")
    box = canvas.bounding_box()
    assert box is not None
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]

    def drag(*points: tuple[float, float]) -> None:
        page.mouse.move(x0 + points[0][0] * w, y0 + points[0][1] * h)
        page.mouse.down()
        for fx, fy in points[1:]:
            page.mouse.move(x0 + fx * w, y0 + fy * h, steps=6)
        page.mouse.up()

    drag((0.3, 0.5), (0.7, 0.5))  # a brush stroke across the middle
    page.get_by_label("Tool", exact=True).select_option("lasso")
    drag((0.35, 0.35), (0.65, 0.35), (0.65, 0.65), (0.35, 0.65))  # and a lassoed square round it
    shoot(page, shots / "studio-vary-region.png", full_page=False)
    page.get_by_role("button", name="Submit", exact=True).click()
    region = wait_for_task(page, "INPAINT")
    assert region["parentId"] == upscale["id"] and region["status"] == "SUCCESS"

    with studio.client(key) as api:
        varied = picture(api, region["imageUrls"][0]["url"])
    assert varied.size == upscaled.size
    before, after = np.asarray(upscaled, dtype=float), np.asarray(varied, dtype=float)
    vh, vw = before.shape[:2]
    inside = np.abs(after - before)[int(vh * 0.4) : int(vh * 0.6), int(vw * 0.4) : int(vw * 0.6)].mean()
    outside = np.abs(after - before)[: int(vh * 0.15), : int(vw * 0.15)].mean()
    assert inside > 4 * max(outside, 1.0), (inside, outside)  # redrawn where painted, kept elsewhere

    # the gallery: newest first, each task with its parent and children, searchable by prompt
    page.get_by_role("button", name="Refresh the gallery").click()
    cards = page.locator("#gallery li")
    page.wait_for_function("() => document.querySelectorAll('#gallery li').length === 3")
    assert [cards.nth(i).get_attribute("data-task-id") for i in range(3)] == [
        region["id"],
        upscale["id"],
        grid["id"],
    ]
    assert cards.nth(2).get_by_role("button", name=f"Open child task {upscale['id']}").count() == 1
    assert cards.nth(0).get_by_role("button", name=f"Open the parent task {upscale['id']}").count() == 1
    assert unlabelled(page) == []  # the task's buttons and the gallery's, made by the script
    shoot(page, shots / "studio-gallery.png")
    page.get_by_label("Search prompts", exact=True).fill("zebra")
    page.get_by_role("button", name="Search the gallery").click()
    page.wait_for_function("() => document.querySelectorAll('#gallery li').length === 0")
    page.get_by_label("Search prompts", exact=True).fill("LIGHTHOUSE")
    page.get_by_role("button", name="Search the gallery").click()
    # the grid and the vary-region (its window kept the prompt); the upscale has no prompt of its own
    page.wait_for_function("() => document.querySelectorAll('#gallery li').length === 2")
    assert {cards.nth(i).get_attribute("data-task-id") for i in range(2)} == {grid["id"], region["id"]}

    # the same task on a phone-sized screen: nothing wider than the screen
    phone = open_studio(browser, studio, key, PHONE)
    phone.get_by_role("button", name=f"Open task {grid['id']}: {grid['prompt']}").click()
    wait_for_task(phone, "IMAGINE")
    assert phone.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    shoot(phone, shots / "studio-phone.png")
    assert page.problems == [] and phone.problems == []


def test_animate_appears_with_a_video_model_and_shows_the_clips(
    browser: Any, video_studio: LiveServer
) -> None:
    key = video_studio.create_key()
    page = open_studio(browser, video_studio, key)
    page.get_by_label("Prompt", exact=True).fill("a red fox --ar 3:2")
    page.get_by_role("button", name="Submit the prompt").click()
    wait_for_task(page, "IMAGINE")
    page.get_by_role("button", name="U1: upscale image 1").click()
    wait_for_task(page, "UPSCALE")
    page.get_by_role("button", name="Animate (High motion)").click()
    video = wait_for_task(page, "VIDEO")
    clips = page.locator("#images video")
    assert clips.count() == len(video["videoUrls"]) == 4
    assert clips.evaluate_all("els => els.map(e => e.getAttribute('src'))") == [
        c["url"] for c in video["videoUrls"]
    ]
    links = page.locator("#images a[download]").evaluate_all("els => els.map(e => e.download)")
    assert links == [f"{video['id']}_{n}.mp4" for n in range(1, 5)]
    with video_studio.client(key) as api:
        r = api.get(video["videoUrls"][0]["url"])
    assert r.status_code == 200 and r.content[4:8] == b"ftyp"  # an MP4
    assert page.get_by_role("button", name="Extend (High) 1").count() == 1


@pytest.mark.parametrize("path", ["/", "/admin"])
def test_every_control_has_an_accessible_label(browser: Any, studio: LiveServer, path: str) -> None:
    page = new_page(browser)
    page.goto(studio.url + path)
    page.wait_for_function("() => document.documentElement.dataset.ready === '1'")
    assert unlabelled(page) == []


def test_admin_view_refuses_without_the_token_then_creates_a_key_and_grants_credits(
    browser: Any, studio: LiveServer, shots: Path
) -> None:
    with httpx.Client(base_url=studio.url, timeout=30) as anon:
        assert anon.get("/admin/api/keys").status_code == 401
        wrong = anon.get("/admin/api/keys", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "token" in wrong.json()["error"]["message"]
        assert anon.post("/admin/api/keys", json={"credits": 5}).status_code == 401

    page = new_page(browser)
    page.goto(studio.url + "/admin")
    page.wait_for_function("() => document.getElementById('admin-error').textContent !== ''")
    assert "Admin token missing or wrong" in page.locator("#admin-error").text_content()
    assert page.locator("#keys tr").count() == 0

    page.get_by_label("Admin token (OPENMJ_ADMIN_TOKEN)", exact=True).fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Use this admin token").click()
    page.wait_for_function("() => document.querySelectorAll('#keys tr').length > 0")
    page.get_by_label("Name", exact=True).fill("studio test")
    page.get_by_label("Credits", exact=True).fill("40")
    page.get_by_label("Group", exact=True).fill("vip")
    page.get_by_role("button", name="Create a key").click()
    secret = page.locator("#secret")
    secret.wait_for()
    new_key = secret.text_content() or ""
    assert new_key.startswith("sk-")

    with httpx.Client(base_url=studio.url, headers={"Authorization": f"Bearer {new_key}"}, timeout=30) as api:
        key_id = page.locator("#keys tr", has_text="studio test").get_attribute("data-key-id")
        assert key_id and api.get("/studio/api/tasks").json()["total"] == 0
        row = page.locator(f"#keys tr[data-key-id='{key_id}']")
        row.get_by_label(f"Credits to grant to {key_id}").fill("250")
        row.get_by_role("button", name=f"Grant credits to {key_id}").click()
        # the rows are read again after the grant
        expect(row.locator(".credits")).to_have_text("290", timeout=WAIT_MS)
        balance = api.get("/api/v1/apikeys/current-balance").json()["data"]
        assert balance["balance"] == 290

        assert unlabelled(page) == []  # every row's inputs and buttons
        row.get_by_role("button", name=f"Show the ledger of {key_id}").click()
        page.wait_for_function("() => document.querySelectorAll('#detail tbody tr').length === 2")
        shoot(page, shots / "admin.png")

        row.get_by_role("button", name=f"Disable {key_id}").click()
        expect(row).to_contain_text("disabled", timeout=WAIT_MS)
        assert api.get("/api/v1/apikeys/current-balance").status_code in (401, 403)
    # the only error is the refused first call, before the token was given
    assert [p for p in page.problems if "401" not in p] == []


def test_the_admin_api_is_off_when_no_token_is_configured(api_server: LiveServer) -> None:
    with httpx.Client(base_url=api_server.url, timeout=30) as anon:
        r = anon.get("/admin/api/keys", headers={"Authorization": "Bearer anything"})
    assert r.status_code == 403
    assert "OPENMJ_ADMIN_TOKEN" in r.json()["error"]["message"]
