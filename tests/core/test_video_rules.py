"""The core's video rules without a server: sizes, clip lengths, the 21 s cap, prices, messages."""

from __future__ import annotations

from typing import Any

import pytest

from openmj.core.operations import ModelCaps, validate_request
from openmj.core.pricing import PriceTable
from openmj.core.prompt.errors import PromptError
from openmj.core.prompt.policies import video_prompt
from openmj.core.tasks import ErrorCode, ImageResult, Operation, Speed, Status, Task, TaskError, TaskRequest
from openmj.core.video import video_size

VIDEO = ModelCaps(name="tiny", video=True)


@pytest.mark.parametrize(
    ("start", "resolution", "size"),
    [
        ((1000, 1000), "sd", (624, 624)),  # Midjourney's own sizes (docs/reference/mj-prompt.md §5)
        ((1000, 1500), "sd", (512, 768)),
        ((1000, 1000), "hd", (960, 960)),
        ((1000, 1500), "hd", (784, 1168)),
        ((1920, 1080), "hd", (1280, 720)),  # 16:9 at the HD area: 720p
    ],
)
def test_sizes_follow_the_start_image(start: tuple[int, int], resolution: str, size: tuple[int, int]) -> None:
    assert video_size(*start, resolution) == size
    assert all(side % 16 == 0 for side in size)


def clip_task(
    seconds_frames: int, *, fps: float = 16.0, resolution: str = "sd", op: Operation = Operation.VIDEO
) -> Task:
    return Task(
        id="task-unified-1-video",
        owner="k",
        dialect="kie",
        operation=op,
        model="midjourney",
        status=Status.COMPLETED,
        progress=100,
        prompt="waves",
        spec={"prompt": {"text": "waves"}, "video": {"resolution": resolution, "motion": "high"}},
        request={},
        speed=Speed.FAST,
        seed=1,
        created_at=0,
        results=[ImageResult("0.mp4", 768, 512, 1, "video/mp4", seconds_frames, fps, "0_thumb.webp")],
    )


def request(op: Operation, **params: Any) -> TaskRequest:
    return TaskRequest(operation=op, model="midjourney", dialect="kie", params=params, parent_index=0)


def test_extend_adds_four_seconds_up_to_21() -> None:
    frames = 81  # 5 s at 16 fps
    for _ in range(4):
        spec = validate_request(request(Operation.VIDEO_EXTEND), clip_task(frames), VIDEO)
        assert spec["video"]["seconds"] == 4.0 and spec["video"]["motion"] == "high"
        frames += 64
    assert frames == 337  # 21 s
    with pytest.raises(TaskError) as err:
        validate_request(request(Operation.VIDEO_EXTEND), clip_task(frames), VIDEO)
    assert err.value.code is ErrorCode.INVALID_PARAMETERS and "21 s" in err.value.message


def test_motion_is_the_request_s_then_the_prompt_s_then_the_source_s() -> None:
    spec = validate_request(
        request(Operation.VIDEO, image_url="https://a.com/s.png", motion="HIGH"), None, VIDEO
    )
    assert spec["video"]["motion"] == "high" and spec["video"]["batch"] == 4  # Midjourney's default batch
    manual = request(Operation.VIDEO_EXTEND)
    manual.parsed = video_prompt("now calm --motion low").to_dict()  # type: ignore[union-attr]
    spec = validate_request(manual, clip_task(81), VIDEO)
    assert (
        spec["video"]["motion"] == "low" and spec["video"]["manual"] and spec["prompt"]["text"] == "now calm"
    )
    auto = validate_request(request(Operation.VIDEO_EXTEND), clip_task(81), VIDEO)
    assert auto["video"]["motion"] == "high" and auto["prompt"]["text"] == "waves"  # the source's


def test_an_image_task_cannot_be_extended() -> None:
    image = clip_task(0, op=Operation.IMAGINE)
    with pytest.raises(TaskError) as err:
        validate_request(request(Operation.VIDEO_EXTEND), image, VIDEO)
    assert "not a video" in err.value.message


def test_hd_clips_are_not_upscaled_again() -> None:
    spec = validate_request(request(Operation.VIDEO_UPSCALE), clip_task(81), VIDEO)
    assert (spec["video"]["width"], spec["video"]["height"]) == video_size(768, 512, "hd")
    with pytest.raises(TaskError) as err:
        validate_request(request(Operation.VIDEO_UPSCALE), clip_task(81, resolution="hd"), VIDEO)
    assert err.value.code is ErrorCode.ALREADY_UPSCALED


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"image_url": "https://a.com/s.png", "motion": "medium"}, "motion"),
        ({"image_url": "https://a.com/s.png", "batch": 3}, "batch"),
        ({"image_url": "https://a.com/s.png", "batch": 0}, "batch"),
        ({"image_url": "https://a.com/s.png", "loop": "yes"}, "loop"),
        ({"image_url": "https://a.com/s.png", "loop": True, "end_url": "https://a.com/e.png"}, "--loop"),
        ({}, "--video needs a starting image"),
        ({"image_url": "https://a.com/s.png", "resolution": "4k"}, "resolution"),
    ],
)
def test_animate_refusals(params: dict[str, Any], words: str) -> None:
    with pytest.raises(TaskError) as err:
        validate_request(request(Operation.VIDEO, **params), None, VIDEO)
    assert words in err.value.message


def test_without_a_video_model_video_is_not_supported() -> None:
    with pytest.raises(TaskError) as err:
        validate_request(request(Operation.VIDEO, image_url="https://a.com/s.png"), None, ModelCaps())
    assert err.value.code is ErrorCode.NOT_SUPPORTED and "--video-model" in err.value.message


def test_the_prompt_side() -> None:
    parsed = video_prompt("a storm rolls in --motion high --bs 2 --loop")
    assert parsed is not None
    assert parsed.text == "a storm rolls in" and parsed.params["bs"] == 2 and parsed.params["loop"] is True
    assert video_prompt("   ") is None  # a text prompt is optional
    for text, words in [
        ("a storm --ar 16:9", "not compatible with `--video`"),
        ("a storm --loop --end https://a.com/e.png", "`--end` is not compatible with `--loop`"),
        ("a storm --bs 3", "--bs"),
    ]:
        with pytest.raises(PromptError) as err:
            video_prompt(text)
        assert words in str(err.value)


def test_prices_per_clip_and_resolution() -> None:
    table = PriceTable.with_overrides({"video:hd": 60}, {"vip": 0.5})
    assert table.video_price(Operation.VIDEO, "sd", 4, "midjourney", "default") == 64
    assert table.video_price(Operation.VIDEO, "hd", 2, "midjourney", "default") == 120
    assert table.video_price(Operation.VIDEO, "sd", 2, "midjourney", "vip") == 16
    assert table.video_price(Operation.VIDEO_EXTEND, "hd", 1, "midjourney", "default") == 52
    assert table.video_price(Operation.VIDEO_UPSCALE, "hd", 1, "midjourney", "default") == 8
