"""The core's model rules without a server: families, the version map, V8.x quality and drafts."""

from __future__ import annotations

from typing import Any

import pytest

from openmj.core.families import FAMILIES, FLUX1, FLUX2_KLEIN, SD15, Z_IMAGE
from openmj.core.mapping import GRID_IMAGES, V8_DRAFT_IMAGES, grid_images, plan_generation
from openmj.core.operations import validate_request
from openmj.core.pricing import PriceTable
from openmj.core.prompt import parse
from openmj.core.routing import ModelCaps, ServedModels, version_keys
from openmj.core.tasks import ErrorCode, ImageResult, Operation, Speed, Status, Task, TaskError, TaskRequest

KLEIN = ModelCaps(name="flux2-klein-4b", references=True, family="flux2-klein")
ZIMAGE = ModelCaps(name="z-image-turbo", references=False, family="z-image")
SCHNELL = ModelCaps(name="flux1-schnell", references=False, family="flux1")


def imagine(prompt: str, version: str = "7", speed: Speed = Speed.FAST, **params: Any) -> TaskRequest:
    return TaskRequest(
        operation=Operation.IMAGINE,
        model="mj-v8.1" if version.startswith("8") else "mj-v7",
        dialect="evolink",
        prompt=prompt,
        parsed=parse(prompt, version).to_dict(),
        speed=speed,
        params=params,
        prompt_version=version,
    )


def finished(engine_model: str, version: str = "7") -> Task:
    return Task(
        id="task-unified-1-parent",
        owner="k",
        dialect="evolink",
        operation=Operation.IMAGINE,
        model="mj-v7",
        status=Status.COMPLETED,
        progress=100,
        prompt="a cat",
        spec={"prompt": {"text": "a cat", "params": {}, "effective_model": version}, "version": version},
        request={},
        speed=Speed.FAST,
        seed=1,
        created_at=0.0,
        results=[ImageResult(f"{i}.png", 256, 256, i) for i in range(4)],
        engine_model=engine_model,
    )


# --------------------------------------------------------------------------- the version map


def test_version_keys_go_from_specific_to_default() -> None:
    assert version_keys("niji 7") == ["niji 7", "niji", "default"]
    assert version_keys("6.1") == ["6.1", "6", "default"]
    assert version_keys("8.1") == ["8.1", "8", "default"]
    assert version_keys("7") == ["7", "default"]


def test_one_model_serves_every_version() -> None:
    served = ServedModels.build([KLEIN])
    for version in ("7", "6.1", "niji 7", "8.1"):
        assert served.for_version(version) == "flux2-klein-4b"


def test_with_two_models_niji_goes_to_the_second_by_default() -> None:
    served = ServedModels.build([KLEIN, ZIMAGE])
    assert served.main == "flux2-klein-4b"
    assert served.for_version("niji 7") == "z-image-turbo"
    assert served.for_version("niji 6") == "z-image-turbo"
    assert served.for_version("7") == "flux2-klein-4b"
    assert served.for_version("8.2") == "flux2-klein-4b"


def test_the_map_wins_most_specific_first() -> None:
    served = ServedModels.build(
        [KLEIN, ZIMAGE, SCHNELL], {"6": "flux1-schnell", "6.1": "z-image-turbo", "niji": "flux2-klein-4b"}
    )
    assert served.for_version("6") == "flux1-schnell"
    assert served.for_version("6.1") == "z-image-turbo"
    assert served.for_version("niji 7") == "flux2-klein-4b"
    assert served.for_version("7") == "flux2-klein-4b"


def test_a_map_to_a_model_not_served_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="'niji' to 'flux1-schnell', which is not served"):
        ServedModels.build([KLEIN], {"niji": "flux1-schnell"})


def test_actions_run_on_the_model_that_made_the_source() -> None:
    served = ServedModels.build([KLEIN, ZIMAGE])
    parent = finished("z-image-turbo")
    assert served.route(Operation.UPSCALE, "7", parent).name == "z-image-turbo"
    gone = finished("sdxl-lightning")
    with pytest.raises(TaskError) as err:
        served.route(Operation.UPSCALE, "7", gone)
    assert err.value.http_status == 400 and "'sdxl-lightning'" in err.value.message


def test_video_runs_where_the_video_model_is() -> None:
    served = ServedModels.build([KLEIN, ZIMAGE])
    assert served.route(Operation.VIDEO, "niji 7", finished("z-image-turbo")).name == "flux2-klein-4b"


# --------------------------------------------------------------------------- what a family cannot do


@pytest.mark.parametrize("caps", [ZIMAGE, SCHNELL])
@pytest.mark.parametrize("param", ["--sref https://a.com/s.png", "--oref https://a.com/o.png"])
def test_references_are_refused_by_a_family_without_them(caps: ModelCaps, param: str) -> None:
    with pytest.raises(TaskError) as err:
        validate_request(imagine(f"a cat {param}"), None, caps)
    assert err.value.http_status == 400 and err.value.code is ErrorCode.NOT_SUPPORTED
    assert f"'{caps.name}'" in err.value.message and param.split()[0] in err.value.message


def test_klein_takes_references() -> None:
    spec = validate_request(imagine("a cat --sref https://a.com/s.png"), None, KLEIN)
    assert spec["refs"]["sref"][0]["ref"] == "https://a.com/s.png"


@pytest.mark.parametrize("caps", [KLEIN, ZIMAGE, SCHNELL])
def test_tile_needs_a_convolutional_denoiser(caps: ModelCaps) -> None:
    with pytest.raises(TaskError) as err:
        validate_request(imagine("a pattern --tile"), None, caps)
    assert err.value.http_status == 400 and "--tile" in err.value.message and caps.name in err.value.message
    assert validate_request(imagine("a pattern --tile"), None, ModelCaps(name="tiny"))["prompt"]["params"][
        "tile"
    ]


def plan(family: Any, prompt: str, **kw: Any) -> Any:
    p = parse(prompt).to_dict()
    return plan_generation(
        text=p["text"],
        params=p["params"],
        segments=p.get("segments"),
        seed=1,
        speed=Speed.FAST,
        native_side=1024,
        size_multiple=family.size_multiple,
        steps=4,
        guidance=3.5,
        family=family,
        **kw,
    )


def test_stylize_moves_guidance_only_under_classifier_free_guidance() -> None:
    assert plan(SD15, "a cat --s 1000").guidance < plan(SD15, "a cat --s 0").guidance
    for fam in (FLUX2_KLEIN, Z_IMAGE, FLUX1):
        assert plan(fam, "a cat --s 1000").guidance == plan(fam, "a cat --s 0").guidance == 3.5
        assert plan(fam, "a cat --exp 100").guidance == 3.5


def test_negative_terms_reach_only_families_with_a_negative_branch() -> None:
    assert plan(SD15, "a cat --no dogs").negative_prompt == "dogs"
    assert plan(FLUX1, "a cat --no dogs").negative_prompt == "dogs"  # true CFG
    assert plan(FLUX2_KLEIN, "a cat --no dogs").negative_prompt is None
    assert plan(Z_IMAGE, "a cat::1 dogs::-0.5").negative_prompt is None


def test_chaos_jitters_embeddings_only_on_sd15() -> None:
    assert plan(SD15, "a cat --c 100").chaos_sigma > 0
    assert all(plan(f, "a cat --c 100").chaos_sigma == 0 for f in (FLUX2_KLEIN, Z_IMAGE, FLUX1))


def test_transformer_sizes_are_multiples_of_16() -> None:
    for fam in FAMILIES.values():
        for ar in ("1:1", "16:9", "2:3", "7:4"):
            p = plan(fam, f"a cat --ar {ar}")
            assert p.width % fam.size_multiple == 0 and p.height % fam.size_multiple == 0


# --------------------------------------------------------------------------- V8.x quality and drafts


def test_v8_drafts_make_24_images_at_half_size() -> None:
    assert grid_images("8.1", True) == V8_DRAFT_IMAGES == 24
    assert grid_images("8.2", True) == 24
    assert grid_images("7", True) == GRID_IMAGES == 4
    assert grid_images("8.1", False) == 4
    draft = plan(SD15, "a cat --ar 16:9", version="8.1", n_images=None)
    full = plan(SD15, "a cat --ar 16:9", version="8.1")
    assert len(full.seeds) == 4
    p = parse("a cat --ar 16:9").to_dict()
    d = plan_generation(
        text=p["text"], params=p["params"], segments=None, seed=1, speed=Speed.DRAFT, native_side=1024,
        size_multiple=8, steps=4, guidance=3.5, version="8.1",
    )  # fmt: skip
    assert len(d.seeds) == 24 and len(set(d.seeds)) == 24
    assert (d.width, d.height) == (full.width // 2, full.height // 2)
    assert len(draft.seeds) == 4  # fast speed: a grid


def test_hd_doubles_the_sides_and_costs_one_and_a_half() -> None:
    standard = plan(FLUX2_KLEIN, "a cat --ar 3:2")
    hd = plan(FLUX2_KLEIN, "a cat --ar 3:2", hd=True)
    assert (hd.width, hd.height) == (2 * standard.width, 2 * standard.height)
    prices = PriceTable()
    fast = prices.price(Operation.IMAGINE, Speed.FAST, "mj-v8.1", "default")
    assert prices.price(Operation.IMAGINE, Speed.FAST, "mj-v8.1", "default", "hd") == fast * 1.5
    assert prices.price(Operation.IMAGINE, Speed.TURBO, "mj-v8.1", "default", "hd") == 2 * fast * 1.5


def test_hd_is_recorded_for_v8_imagine() -> None:
    spec = validate_request(imagine("a cat", "8.1", quality="hd"), None, KLEIN)
    assert spec["quality"] == "hd" and spec["version"] == "8.1"
    assert "quality" not in validate_request(imagine("a cat", "8.1", quality="standard"), None, KLEIN)


@pytest.mark.parametrize(
    ("req", "message"),
    [
        (imagine("a cat", "7", quality="hd"), "only available for V8.x"),
        (imagine("a cat", "8.1", Speed.DRAFT, quality="hd"), "cannot be combined with draft"),
        (imagine("a cat --draft", "8.1", quality="hd"), "cannot be combined with draft"),
    ],
)
def test_hd_rules(req: TaskRequest, message: str) -> None:
    with pytest.raises(TaskError) as err:
        validate_request(req, None, KLEIN)
    assert err.value.http_status == 400 and err.value.param == "quality" and message in err.value.message


def test_an_action_keeps_its_source_version() -> None:
    req = TaskRequest(
        operation=Operation.UPSCALE,
        model="mj-v7-upscale",
        dialect="evolink",
        params={"mode": "subtle", "factor": 2},
        parent_id="task-unified-1-parent",
        parent_index=0,
    )
    assert validate_request(req, finished("tiny", "niji 7"), ModelCaps())["version"] == "niji 7"
