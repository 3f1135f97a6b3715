"""openmj.client (issue 17) against a real openmj on loopback: typed tasks, every action, wait with
progress, downloads, the API's errors as exceptions, retries on 429/5xx within a budget, async."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx
import pytest
from PIL import Image

from openmj.client import (
    NO_RETRY,
    APIConnectionError,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetryEvent,
    RetryPolicy,
    ServerError,
    Task,
    TaskFailedError,
    TaskStatus,
    WaitTimeoutError,
    polygon_mask,
)
from tests.http_client import HTTP
from tests.live import LiveServer, free_port
from tests.loopback import Handler, Loopback, Seen

FAST = 0.05  # poll interval: these tasks take well under a second on the fake engine


def client(live: LiveServer, **kw: object) -> Client:
    return Client(live.create_key(credits=1000), live.url, **kw)  # type: ignore[arg-type]


def size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_imagine_wait_reports_progress_and_downloads_four_named_pngs(
    fake_server: LiveServer, tmp_path: Path
) -> None:
    seen: list[tuple[TaskStatus, int]] = []
    with client(fake_server) as mj:
        task = mj.imagine("a red fox --ar 3:2")
        assert task.status is TaskStatus.PENDING and task.id.startswith("task-unified-")
        assert task.credits_reserved == 8.0
        done = mj.wait(task, on_progress=lambda t: seen.append((t.status, t.progress)), interval=FAST)
        files = mj.download(done, tmp_path / "out", grid=True)
    assert done.completed and done.progress == 100 and done.type == "image"
    assert seen[-1] == (TaskStatus.COMPLETED, 100)
    assert [p for _, p in seen] == sorted(p for _, p in seen)  # progress only grows
    assert len(set(seen)) == len(seen)  # reported on change only
    assert [f.name for f in files] == [f"{task.id}_{n}.png" for n in (1, 2, 3, 4)] + [f"{task.id}_grid.png"]
    for f, im in zip(files, done.images, strict=False):
        assert size(f) == (im.width, im.height)
        assert abs(im.width / im.height - 1.5) < 0.05
        assert im.seed is not None
    assert done.credits_used == 8.0 and done.final_prompt == "a red fox --ar 3:2"


def test_every_action_on_a_finished_task(fake_server: LiveServer) -> None:
    with client(fake_server) as mj:
        grid = mj.wait(mj.imagine("a lighthouse at dusk --ar 16:9"), interval=FAST)
        source = grid.images[1]
        up = mj.wait(mj.upscale(grid, 1), interval=FAST)
        assert len(up.images) == 1 and (up.images[0].width, up.images[0].height) == (
            source.width * 2,
            source.height * 2,
        )
        assert up.model == "mj-v7-upscale"
        strong = mj.wait(mj.vary(grid.id, 1, strong=True), interval=FAST)
        assert len(strong.images) == 4 and strong.model == "mj-v7-variation"
        zoomed = mj.wait(mj.zoom(grid, 0, scale=2), interval=FAST)
        assert (zoomed.images[0].width, zoomed.images[0].height) == (
            grid.images[0].width,
            grid.images[0].height,
        )
        panned = mj.wait(mj.pan(grid, 0, "left"), interval=FAST)
        assert panned.images[0].width > grid.images[0].width
        assert panned.images[0].height == grid.images[0].height
        w, h = source.width, source.height
        mask = polygon_mask([(0, 0), (w / 2, 0), (w / 2, h / 2), (0, h / 2)], w, h)
        region = mj.wait(mj.inpaint(grid, 1, mask, prompt="a red boat"), interval=FAST)
        assert region.model == "mj-v7-inpaint" and len(region.images) == 4
        remixed = mj.wait(mj.remix(grid, 2, "a lighthouse at dawn"), interval=FAST)
        assert remixed.model == "mj-v7-remix" and remixed.completed
        with pytest.raises(PermissionDeniedError) as again:
            mj.upscale(up, 0)  # an upscale of an upscale: EvoLink's 403
        assert again.value.code == "already_upscaled"


def test_the_api_errors_arrive_as_exceptions_with_its_code_and_message(fake_server: LiveServer) -> None:
    with client(fake_server, retry=NO_RETRY) as mj:
        with pytest.raises(BadRequestError) as bad:
            mj.imagine("a fox --ar 3:0")
        assert bad.value.status == 400 and bad.value.code == "invalid_request"
        assert (
            bad.value.param == "prompt"
            and bad.value.message == "Invalid parameter: Invalid aspect ratio `3:0`"
        )
        with pytest.raises(NotFoundError) as missing:
            mj.get("task-unified-1700000000-abcdefgh")
        assert missing.value.code == "task_not_found"
        with pytest.raises(BadRequestError) as scale:
            mj.zoom("task-unified-1700000000-abcdefgh", 0, scale=5)
        assert scale.value.param == "scale", scale.value.message
    with Client("sk-not-a-key", fake_server.url) as stranger, pytest.raises(AuthenticationError) as who:
        stranger.balance()
    assert who.value.status == 401 and who.value.code == "unauthorized"
    with Client(fake_server.create_key(credits=1), fake_server.url) as poor:
        with pytest.raises(InsufficientCreditsError) as broke:
            poor.imagine("a fox")
        assert (
            broke.value.code == "insufficient_quota" and broke.value.body["error"]["estimated_credits"] == 8
        )
        assert poor.balance().remaining == 1.0


def test_balance_and_the_task_list(fake_server: LiveServer) -> None:
    with client(fake_server) as mj:
        assert mj.balance().remaining == 1000.0
        first = mj.wait(mj.imagine("one"), interval=FAST)
        second = mj.wait(mj.imagine("two --turbo"), interval=FAST)
        wallet = mj.balance()
        assert wallet.used == first.credits_used + second.credits_used  # type: ignore[operator]
        assert wallet.remaining == 1000.0 - wallet.used
        page = mj.tasks(page_size=1)
        assert page.total == 2 and page.has_more and [t.id for t in page.tasks] == [second.id]
        assert page.tasks[0].images == []  # list items carry no links


def test_a_cancelled_task_raises_when_waited_for_and_a_wait_can_time_out(api_server: LiveServer) -> None:
    with client(api_server) as mj:
        task = mj.imagine("never rendered: this server has no worker")
        with pytest.raises(WaitTimeoutError) as late:
            mj.wait(task, timeout=0.2, interval=FAST)
        assert late.value.task.status is TaskStatus.PENDING
        cancelled = mj.cancel(task)
        assert cancelled.status is TaskStatus.CANCELLED and cancelled.credits_used == 0
        with pytest.raises(TaskFailedError) as failed:
            mj.wait(task, interval=FAST)
        assert failed.value.code == "request_cancelled" and failed.value.task.id == task.id
        assert mj.wait(task, raise_on_failure=False).status is TaskStatus.CANCELLED
        assert mj.balance().remaining == 1000.0  # refunded


def test_429_is_retried_after_retry_after_then_succeeds(api_server: LiveServer) -> None:
    """A key with one unfinished task at most: the second imagine is refused with Retry-After; the
    client waits that long and tries again, and by then the first is out of the way."""
    key = api_server.create_key(credits=100, concurrency=1)
    events: list[RetryEvent] = []
    with Client(key, api_server.url) as mj:
        first = mj.imagine("first")

        def make_room(event: RetryEvent) -> None:
            events.append(event)
            mj.cancel(first)  # the retry will find room

        mj.on_retry = make_room
        second = mj.imagine("second")
    assert second.status is TaskStatus.PENDING
    assert [(e.status, e.attempt, e.delay) for e in events] == [(429, 1, 5.0)]  # the server's Retry-After


def test_a_retry_after_beyond_the_budget_raises_at_once(api_server: LiveServer) -> None:
    key = api_server.create_key(credits=100, concurrency=1)
    events: list[RetryEvent] = []
    with Client(key, api_server.url, retry=RetryPolicy(budget=1.0), on_retry=events.append) as mj:
        mj.imagine("first")
        with pytest.raises(RateLimitError) as limited:
            mj.imagine("second")
    assert limited.value.retry_after == 5.0 and limited.value.code == "rate_limit_exceeded"
    assert events == []


class Gateway(Loopback):
    """A proxy in front of openmj that answers `failures` 5xx first, then passes requests through."""

    def __init__(self, upstream: str, failures: list[int]) -> None:
        super().__init__()
        self.upstream = upstream
        self.failures = list(failures)

    def answer(self, handler: Handler, seen: Seen) -> int:
        with self.lock:
            status = self.failures.pop(0) if self.failures else None
        if status is not None:
            return handler.send(status, b"<html>bad gateway</html>", "text/html", Retry_After="0")
        headers = {k: v for k, v in seen.headers.items() if k.lower() in ("authorization", "content-type")}
        r = httpx.request(seen.method, self.upstream + seen.path, content=seen.body, headers=headers)
        return handler.send(r.status_code, r.content, r.headers.get("content-type", "application/json"))


def test_5xx_from_a_gateway_is_retried_but_a_500_on_create_is_not(fake_server: LiveServer) -> None:
    key = fake_server.create_key(credits=100)
    events: list[RetryEvent] = []
    with Gateway(fake_server.url, [503, 502]) as gw, Client(key, gw.url(""), on_retry=events.append) as mj:
        assert mj.balance().remaining == 100.0
        assert [e.status for e in events] == [503, 502]
        gw.failures = [500]
        with pytest.raises(ServerError) as broken:
            mj.imagine("a fox")  # the server may have created it: not sent twice
        assert broken.value.status == 500 and "bad gateway" in broken.value.message
        assert len(gw.hits("/v1/images/generations")) == 1


def test_an_unreachable_server_is_a_connection_error() -> None:
    with (
        Client(
            "sk-x", f"http://127.0.0.1:{free_port()}", retry=RetryPolicy(max_retries=2, backoff=0.01)
        ) as mj,
        pytest.raises(APIConnectionError),
    ):
        mj.balance()


def test_the_key_and_url_come_from_the_environment(
    fake_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENMJ_API_KEY", fake_server.create_key(credits=42))
    monkeypatch.setenv("OPENMJ_BASE_URL", fake_server.url + "/")
    with Client() as mj:
        assert mj.balance().remaining == 42.0
    monkeypatch.delenv("OPENMJ_API_KEY")
    with pytest.raises(Exception, match="OPENMJ_API_KEY"):
        Client()


def test_the_async_client(fake_server: LiveServer, tmp_path: Path) -> None:
    key = fake_server.create_key(credits=100)

    async def main() -> tuple[Task, Task, list[Path], float]:
        async with AsyncClient(key, fake_server.url) as mj:
            grid = await mj.wait(await mj.imagine("a red fox --ar 2:3"), interval=FAST)
            up = await mj.wait(await mj.upscale(grid, 3), interval=FAST)
            files = await mj.download(up, tmp_path)
            return grid, up, files, (await mj.balance()).remaining

    grid, up, files, left = asyncio.run(main())
    assert grid.completed and len(grid.images) == 4
    assert [f.name for f in files] == [f"{up.id}_1.png"]
    assert size(files[0]) == (grid.images[3].width * 2, grid.images[3].height * 2)
    assert left == 100 - 8 - 4


def test_video_on_a_server_without_a_video_model_is_refused(fake_server: LiveServer) -> None:
    with client(fake_server) as mj:
        grid = mj.wait(mj.imagine("waves"), interval=FAST)
        with pytest.raises(BadRequestError) as refused:
            mj.video(grid, 0)
    assert "video" in refused.value.message.lower()
    with Image.open(io.BytesIO(HTTP.get(grid.images[0].url).content)) as im:
        assert im.size == (grid.images[0].width, grid.images[0].height)


def test_downloads_follow_a_redirect_and_never_carry_the_key(fake_server: LiveServer, tmp_path: Path) -> None:
    """Result links may live on another host (EvoLink's CDN): the key goes to the API only."""
    with client(fake_server) as mj:
        grid = mj.wait(mj.imagine("a fox"), interval=FAST)
        real = grid.images[0].url
        with Loopback(lambda h, s: h.send(302, b"", "text/plain", Location=real)) as cdn:
            elsewhere = Task.from_json(grid.raw | {"result_data": [], "results": [cdn.url("/a/0.png")]})
            [path] = mj.download(elsewhere, tmp_path)
            assert [s.path for s in cdn.hits()] == ["/a/0.png"]
            assert "authorization" not in {k.lower() for k in cdn.hits()[0].headers}
    assert path.name == f"{grid.id}_1.png" and path.read_bytes() == HTTP.get(real).content


def test_the_async_client_has_the_sync_clients_methods() -> None:
    import inspect

    public = {n for n in dir(Client) if not n.startswith("_")} - {"close"}
    assert public == {n for n in dir(AsyncClient) if not n.startswith("_")} - {"close"}
    for name in public:
        sync, aio = getattr(Client, name), getattr(AsyncClient, name)
        assert inspect.iscoroutinefunction(aio), name
        assert list(inspect.signature(sync).parameters) == list(inspect.signature(aio).parameters), name
    assert {"imagine", "upscale", "vary", "remix", "zoom", "pan", "inpaint", "video", "get", "wait"} <= public
    assert {"download", "balance"} <= public
