"""`openmj models`: every preset with its licence and operations, what this deployment serves,
and no model loaded (no torch import)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

LIST = (
    "import sys; from openmj.cli import app\n"
    "try:\n    app(['models', *sys.argv[1:]])\n"
    "except SystemExit as e:\n    code = e.code\n"
    "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
)


def models(*args: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENMJ_")}
    out = subprocess.run(
        [sys.executable, "-c", LIST, *args], capture_output=True, text=True, env=clean | env, check=True
    )
    return out.stdout


@pytest.mark.parametrize(
    ("args", "env", "serves"),
    [
        ((), {}, "image models sd15-lcm; video model none"),
        ((), {"OPENMJ_MODEL": "tiny"}, "image models tiny; video model tiny-video"),
        (
            ("--model", "sdxl-lightning", "--video-model", "wan21-flf2v-720p"),
            {},
            "video model wan21-flf2v-720p",
        ),
        (("--model", "tiny", "--video-model", "none"), {}, "image models tiny; video model none"),
        (
            ("--model", "tiny-flux2-klein", "--model", "tiny-z-image"),
            {},
            "image models tiny-flux2-klein, tiny-z-image; video model none",
        ),
        (
            (),
            {"OPENMJ_MODEL": "tiny,tiny-z-image"},
            "image models tiny, tiny-z-image; video model tiny-video",
        ),
    ],
)
def test_models_lists_the_presets_and_what_is_served(
    args: tuple[str, ...], env: dict[str, str], serves: str
) -> None:
    text = models(*args, **env)
    for name in (
        *("sd15-lcm", "sdxl-lightning", "flux2-klein-4b", "z-image-turbo", "flux1-schnell", "tiny"),
        *("tiny-flux2-klein", "tiny-z-image", "tiny-flux1-schnell"),
        *("wan21-flf2v-720p", "wan21-i2v-480p", "tiny-video"),
    ):
        assert name in text
    for pipeline in ("Flux2KleinPipeline", "ZImagePipeline", "FluxPipeline", "StableDiffusionXLPipeline"):
        assert pipeline in text
    assert "Apache-2.0" in text and "OpenRAIL" in text and "video_extend" in text
    assert serves in text.split("This deployment serves: ")[1]
    assert text.strip().endswith("NO-TORCH")


def test_models_shows_the_version_map_and_refuses_one_to_a_model_not_served() -> None:
    text = models("--model", "tiny-flux2-klein", "--model", "tiny-z-image", "--version-map", "6=tiny-z-image")
    routes = text.split("Version map: ")[1]
    assert "6 → tiny-z-image" in routes and "niji → tiny-z-image" in routes
    assert "default → tiny-flux2-klein" in routes
    assert "no --sref/--oref" in text and "no --tile" in text  # what Z-Image / FLUX.1 cannot do
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENMJ_")}
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "openmj.cli",
            "models",
            "--model",
            "tiny",
            "--version-map",
            "niji=flux1-schnell",
        ],
        capture_output=True,
        text=True,
        env=clean,
    )
    assert bad.returncode == 2
    assert "'niji' to 'flux1-schnell', which is not served" in bad.stderr
