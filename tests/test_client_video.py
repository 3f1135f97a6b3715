"""`Client.video`: Animate image N of a finished task and download the MP4 clips it makes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openmj.client import Client, TaskStatus
from tests.fake_engine import FakeEngine
from tests.live import LiveServer, make_settings


@pytest.fixture(scope="module")
def video_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Animate is offered once a video model is configured; the fake engine makes the clips (what
    is under test is the client, not the video model: tests/test_video.py has that)."""
    settings = make_settings(tmp_path_factory.mktemp("data-client-video"), video_model="tiny-video")
    with LiveServer(settings, FakeEngine()) as live:
        yield live


def test_video_animates_an_image_of_a_finished_task(video_server: LiveServer, tmp_path: Path) -> None:
    with Client(video_server.create_key(credits=200), video_server.url) as mj:
        grid = mj.wait(mj.imagine("waves on a beach --ar 3:2"), interval=0.1)
        clip = mj.video(grid, 2, motion="high")
        assert clip.type == "video" and clip.status in (TaskStatus.PENDING, TaskStatus.PROCESSING)
        done = mj.wait(clip, interval=0.1)
        files = mj.download(done, tmp_path)
    assert done.completed and len(done.images) == 4  # Animate makes four clips, as Midjourney's does
    assert [f.name for f in files] == [f"{done.id}_{n}.mp4" for n in (1, 2, 3, 4)]
    assert all(f.read_bytes()[4:8] == b"ftyp" for f in files)
    assert done.images[0].width is not None and done.images[0].width > done.images[0].height  # type: ignore[operator]
