"""GPU benchmark: openmj's GPU presets at full size, random weights, bare diffusers and through LocalEngine.

What it times, per preset: one 4-image grid (`--images`), `--side`² pixels, the preset's steps and
guidance. Every component is built at its real size from the hub configs carried in
bench/gpu_configs/<preset>/ (model_index.json, <component>/config.json,
scheduler/scheduler_config.json: the real checkpoints' files, see bench/gpu_configs/README.md for
where each came from and which values could not be confirmed), with random weights made directly on
the device in bf16: the modules are constructed on the meta device (accelerate's
`init_empty_weights`, under a bf16 default dtype) and each parameter is then materialised on the GPU
and filled with a cheap random normal, so a 12B transformer is built in seconds, with nothing read
from or written to disk. Tokenizers are built offline and small (every token id stays below the real
vocabulary size): CLIP's one-token-per-byte vocabulary (src/openmj/engines/local/tiny.py), a
Unigram T5 vocabulary (as tiny_video.py builds it), and for Qwen a byte-level BPE trained on the
spot with the `tokenizers` library, so the prompt splits into about as many tokens as the real one.

After one warm-up on each side, `--runs` rounds alternate
- bare: `pipe(prompt=[p] * 4, height=side, width=side, num_inference_steps=steps,
  guidance_scale=g, generator=[4 CPU generators])`, and
- openmj: `LocalEngine.run(EngineJob(imagine task))` with that same pipeline installed through
  `Pipelines.adopt` (the scheduler the preset names, no progress bar, the device or CPU offload,
  torch.compile: what `load()` does after `from_pretrained`); the plan it makes is checked to be the
  same prompt, size, steps and guidance as the bare call,
and it reports seconds per grid (medians), openmj ÷ bare, it/s (steps ÷ bare seconds), the peak
VRAM (`torch.cuda.max_memory_allocated`), the weights' size and the build time. SDPA is the
attention everywhere (diffusers' and transformers' default). A preset whose family LocalEngine does
not support has no openmj column (the output says so).

Our target, printed next to the results: a 4-image 1024² grid in under 2 s on one H100-class GPU
for a 4-step preset.

    python bench/gpu.py [--preset NAME ...] [--runs 3] [--side 1024] [--images 4] [--offload]
                        [--compile] [--json results.json] [--tiny]

`--tiny` runs the same code on CPU with every config scaled down (same keys, tiny hidden sizes and
layer counts) at 128², 2 steps: a check of the script, not a measurement. No test depends on it.

Where the configs came from (details, and the unconfirmed values, in bench/gpu_configs/README.md):
- sdxl-lightning: stabilityai/stable-diffusion-xl-base-1.0's files as vendored by vladmandic/sdnext
  (configs/sdxl/, commit 76cbf11 "cache diffusers model config", before sdnext edited them).
- flux1-schnell: black-forest-labs/FLUX.1-schnell's files as vendored by vladmandic/sdnext
  (configs/flux/, commit 81583ef "add flux offline config"; sdnext later flipped the VAE's
  force_upcast, the original `true` is kept here).
- flux2-klein-4b: diffusers' scripts/convert_flux2_to_diffusers.py ("klein-4b" transformer config),
  diffusers' AutoencoderKLFlux2 defaults (the VAE), and public test fixtures that copy the hub files.
- z-image-turbo: public code quoting Tongyi-MAI/Z-Image-Turbo's transformer, VAE, scheduler and
  model index files (several independent copies agree), Qwen/Qwen3-4B's config for the text encoder.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

CONFIGS = Path(__file__).resolve().parent / "gpu_configs"
PRESET_NAMES = ("sdxl-lightning", "flux2-klein-4b", "z-image-turbo", "flux1-schnell")  # smallest first
PROMPT = "a lighthouse on a cliff at dusk, waves breaking on the rocks below"
SEED = 1
TARGET_S = 2.0  # a 4-image 1024² grid of a 4-step preset, one H100-class GPU
TARGET_SIDE = 1024
TARGET_IMAGES = 4

#: (steps, guidance, scheduler) when openmj's presets.py does not (yet) have the preset
FALLBACK: dict[str, tuple[int, float, str]] = {
    "sdxl-lightning": (4, 1.0, "euler_trailing"),
    "flux2-klein-4b": (4, 1.0, "native"),
    "z-image-turbo": (8, 0.0, "native"),
    "flux1-schnell": (4, 0.0, "native"),
}
FAMILIES = {
    "sdxl-lightning": "sdxl",
    "flux2-klein-4b": "flux2-klein",
    "z-image-turbo": "z-image",
    "flux1-schnell": "flux1",
}

# --tiny: the same config keys with tiny values (hidden sizes, layer counts, heads); the latent
# channels, the block layout and the scale factors stay real, so the pipelines' shape logic is
# exercised as at full size. Qwen keeps its 36 layers (klein reads hidden states 9, 18 and 27).
_CLIP = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "projection_dim": 32,
}
_VAE = {"block_out_channels": [32, 32, 32, 32], "layers_per_block": 1, "sample_size": 128}
_QWEN = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "vocab_size": 4096,  # the LM head's logits are the CPU's cost; the tokenizer stays below it
}
_T5 = {"d_model": 32, "d_kv": 8, "d_ff": 37, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4}
TINY: dict[str, dict[str, dict[str, Any]]] = {
    "sdxl-lightning": {
        "unet": {
            "block_out_channels": [32, 64, 64],
            "attention_head_dim": [2, 4, 4],
            "transformer_layers_per_block": [1, 1, 1],
            "layers_per_block": 1,
            "cross_attention_dim": 64,  # text_encoder 32 + text_encoder_2 32, as 768 + 1280 = 2048
            "addition_time_embed_dim": 8,
            "projection_class_embeddings_input_dim": 80,  # 6 × 8 + 32, as 6 × 256 + 1280 = 2816
            "sample_size": 16,
        },
        "vae": _VAE,
        "text_encoder": _CLIP,
        "text_encoder_2": _CLIP,
    },
    "flux2-klein-4b": {
        "transformer": {
            "num_layers": 1,
            "num_single_layers": 1,
            "num_attention_heads": 2,
            "attention_head_dim": 16,
            "joint_attention_dim": 96,  # 3 Qwen layers × 32, as 3 × 2560 = 7680
            "axes_dims_rope": [4, 4, 4, 4],
            "timestep_guidance_channels": 32,
        },
        "vae": _VAE,
        "text_encoder": _QWEN,
    },
    "z-image-turbo": {
        "transformer": {
            "dim": 64,
            "n_heads": 4,
            "n_kv_heads": 4,
            "n_layers": 1,
            "n_refiner_layers": 1,
            "cap_feat_dim": 32,
            "axes_dims": [4, 6, 6],
        },
        "vae": _VAE,
        "text_encoder": _QWEN,
    },
    "flux1-schnell": {
        "transformer": {
            "num_layers": 1,
            "num_single_layers": 1,
            "num_attention_heads": 2,
            "attention_head_dim": 16,
            "joint_attention_dim": 32,  # T5's d_model
            "pooled_projection_dim": 32,  # CLIP's hidden size
            "axes_dims_rope": [4, 6, 6],  # the real config leaves the default, (16, 56, 56) = 128
        },
        "vae": _VAE,
        "text_encoder": _CLIP,
        "text_encoder_2": _T5,
    },
}

QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
# Qwen3's chat template, reduced to what the pipelines use (one user turn, the generation prompt,
# and the empty think block that `enable_thinking=False` adds)
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)


@dataclass
class Spec:
    """One preset as benchmarked."""

    name: str
    family: str
    steps: int
    guidance: float
    scheduler: str
    side: int
    images: int
    engine_supported: bool
    engine_note: str = ""


@dataclass
class Result:
    preset: str
    side: int
    images: int
    steps: int
    guidance: float
    device: str = ""
    dtype: str = ""
    offload: bool = False
    compile: bool = False
    pipeline: str = ""
    scheduler: str = ""
    build_s: float | None = None
    params_b: float | None = None
    weights_gib: float | None = None
    warmup_s: float | None = None
    bare_s: float | None = None
    bare_runs_s: list[float] = field(default_factory=list)
    openmj_s: float | None = None
    openmj_runs_s: list[float] = field(default_factory=list)
    openmj_warmup_s: float | None = None
    ratio: float | None = None
    it_s: float | None = None
    peak_vram_gib: float | None = None
    openmj_peak_vram_gib: float | None = None
    engine_install: str = ""  # "adopt" | "attributes" (Pipelines without adopt) | "" (not run)
    openmj_note: str = ""
    target: str = ""
    error: str = ""


# ------------------------------------------------------------------------------------ presets
def preset_spec(name: str, side: int, images: int, tiny: bool, steps: int | None) -> Spec:
    """Steps, guidance and sampler from openmj's preset when it has one, else the table above;
    whether LocalEngine can serve the family (the openmj column)."""
    n, g, sched = FALLBACK[name]
    family = FAMILIES[name]
    supported, note = False, ""
    try:
        from openmj.engines.local import pipelines as pl
        from openmj.engines.local.presets import PRESETS, resolve_preset

        if name in PRESETS:
            p = resolve_preset(name)
            n, g, sched, family = p.steps, p.guidance, p.scheduler, p.family
            transformer_families = getattr(pl, "FAMILY_PIPELINES", {})
            supported = family in ("sd15", "sdxl") or family in transformer_families
            if not supported:
                note = f"LocalEngine does not support the {family} family yet"
        else:
            note = f"openmj has no preset '{name}' yet (steps/guidance from bench/gpu.py's table)"
    except ImportError as exc:
        note = f"openmj not importable: {exc}"
    if images != TARGET_IMAGES and supported:
        supported, note = False, f"an openmj grid is {TARGET_IMAGES} images (--images {images})"
    if tiny:
        n = 2
    if steps is not None:
        n = steps
    return Spec(name, family, n, g, sched, side, images, supported, note)


# ------------------------------------------------------------------------------------ tokenizers
def clip_tokenizer(workdir: Path) -> Any:
    from transformers import CLIPTokenizer

    from openmj.engines.local.tiny import write_minimal_tokenizer

    folder = workdir / "clip_tokenizer"
    write_minimal_tokenizer(folder)  # 514 tokens (one per byte) < CLIP's 49408
    return CLIPTokenizer.from_pretrained(str(folder), model_max_length=77)


def t5_tokenizer() -> Any:
    import string

    from transformers import T5Tokenizer

    chars = string.ascii_lowercase + string.digits + string.punctuation
    return T5Tokenizer(  # a Unigram vocabulary in memory (as tiny_video.py): 102 tokens < 32128
        vocab=[("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
        + [(c, -5.0) for c in chars]
        + [("▁" + c, -4.0) for c in chars],
        extra_ids=0,
        model_max_length=512,
    )


def qwen_tokenizer() -> Any:
    """A byte-level BPE trained here on a few sentences: the prompt's words become single tokens,
    about as the real Qwen vocabulary splits English (which matters for Z-Image, whose transformer
    sees the caption's unpadded tokens)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from openmj.core.mapping import AESTHETIC_SUFFIX

    corpus = [
        PROMPT,
        AESTHETIC_SUFFIX,
        "user assistant system",
        "a photograph of a city street at night with neon signs and rain on the pavement",
        "a portrait of an old fisherman, soft window light, film grain, shallow depth of field",
        "a bowl of fruit on a wooden table, still life, oil painting in the style of the old masters",
    ] * 4
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=QWEN_SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", model_max_length=131072
    )
    fast.chat_template = QWEN_CHAT_TEMPLATE
    return fast


def make_tokenizer(cls_name: str, workdir: Path) -> Any:
    if cls_name.startswith("CLIP"):
        return clip_tokenizer(workdir)
    if cls_name.startswith("T5"):
        return t5_tokenizer()
    if cls_name.startswith("Qwen2"):
        return qwen_tokenizer()
    raise ValueError(f"no offline tokenizer for {cls_name}")


# ------------------------------------------------------------------------------------ building
def read_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


@contextlib.contextmanager
def default_dtype(dtype: Any) -> Iterator[None]:
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def fp32_names(model: Any, dtype: Any) -> set[str]:
    """Modules transformers keeps in fp32 under this dtype (as from_pretrained does)."""
    import torch

    names = set(getattr(model, "_keep_in_fp32_modules_strict", None) or ())
    if dtype == torch.float16:
        names |= set(getattr(model, "_keep_in_fp32_modules", None) or ())
    return names


def materialize(model: Any, device: str, dtype: Any, cast_buffers: bool) -> None:
    """Replace every meta parameter by a tensor on `device`, filled with a cheap random normal
    (std 1/√fan-in, so activations stay finite through the real depth); 1-D weights (norms) are
    ones and biases zeros. Tied parameters stay tied. Buffers (built for real at construction)
    move to the device."""
    import torch

    keep = fp32_names(model, dtype)
    done: dict[int, torch.nn.Parameter] = {}
    for mod_name, module in model.named_modules():
        parts = set(mod_name.split("."))
        for p_name, p in list(module._parameters.items()):
            if p is None:
                continue
            if id(p) in done:
                module._parameters[p_name] = done[id(p)]
                continue
            dt = torch.float32 if keep & parts else dtype
            t = torch.empty(p.shape, dtype=dt, device=device)
            if t.ndim >= 2:
                t.normal_(0.0, 1.0 / math.sqrt(max(1, t[0].numel())))
            elif "bias" in p_name:
                t.zero_()
            else:
                t.fill_(1.0)
            new = torch.nn.Parameter(t, requires_grad=False)
            done[id(p)] = new
            module._parameters[p_name] = new
        for b_name, b in list(module._buffers.items()):
            if b is None:
                continue
            if b.is_meta:
                b = torch.zeros(b.shape, dtype=b.dtype)
            if cast_buffers and b.is_floating_point():
                module._buffers[b_name] = b.to(device=device, dtype=dtype)
            else:
                module._buffers[b_name] = b.to(device)


def build_model(lib: str, cls_name: str, config: dict[str, Any], device: str, dtype: Any) -> Any:
    import diffusers
    import transformers
    from accelerate import init_empty_weights

    if lib == "diffusers":
        cls = getattr(diffusers, cls_name)
        with default_dtype(dtype), init_empty_weights():
            model = cls.from_config(config)
    elif lib == "transformers":
        cls = getattr(transformers, cls_name)
        cfg = cls.config_class.from_dict(config)
        with default_dtype(dtype), init_empty_weights():
            model = cls(cfg)
        # from_pretrained ties the shared weights (Qwen's LM head and embeddings with
        # tie_word_embeddings, T5's encoder embeddings and `shared`); the constructor does not
        model.tie_weights()
    else:
        raise ValueError(f"unknown library {lib} for {cls_name}")
    materialize(model, device, dtype, cast_buffers=lib == "diffusers")
    model.eval()
    return model


def weights(pipe: Any) -> tuple[int, int]:
    """Parameters and bytes of the pipeline's modules, each tensor once."""
    import torch

    seen: set[int] = set()
    n = size = 0
    for comp in pipe.components.values():
        if not isinstance(comp, torch.nn.Module):
            continue
        for p in comp.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                n += p.numel()
                size += p.numel() * p.element_size()
    return n, size


def build_pipeline(name: str, device: str, dtype: Any, tiny: bool, workdir: Path) -> Any:
    """The preset's diffusers pipeline: every component from its carried config, random weights."""
    import diffusers

    folder = CONFIGS / name
    index = read_json(folder / "model_index.json")
    pipe_cls = getattr(diffusers, index["_class_name"])
    accepted = set(inspect.signature(pipe_cls.__init__).parameters)
    parts: dict[str, Any] = {}
    for key, value in index.items():
        if key.startswith("_"):
            continue
        if not isinstance(value, list):  # pipeline options (is_distilled, force_zeros_for_empty_prompt…)
            if key in accepted:
                parts[key] = value
            continue
        lib, cls_name = value
        if key.startswith("tokenizer"):
            parts[key] = make_tokenizer(cls_name, workdir)
        elif key.startswith("scheduler"):
            parts[key] = getattr(diffusers, cls_name).from_config(
                read_json(folder / key / "scheduler_config.json")
            )
        else:
            config = read_json(folder / key / "config.json")
            if tiny:
                config |= TINY[name].get(key, {})
            parts[key] = build_model(lib, cls_name, config, device, dtype)
    return pipe_cls(**parts)


# ------------------------------------------------------------------------------------ placing
def place_bare(pipe: Any, spec: Spec, device: str, offload: bool, compile_: bool) -> Any:
    """What openmj's Pipelines._place does, for a preset LocalEngine cannot take (or without adopt)."""
    if spec.scheduler == "euler_trailing":  # SDXL-Lightning's model card: Euler, trailing timesteps
        from diffusers import EulerDiscreteScheduler

        pipe.scheduler = EulerDiscreteScheduler.from_config(
            pipe.scheduler.config, timestep_spacing="trailing"
        )
    elif spec.scheduler not in ("native", "default"):
        raise ValueError(f"bench/gpu.py does not know the sampler '{spec.scheduler}'")
    pipe.set_progress_bar_config(disable=True)
    if offload and device.startswith("cuda"):
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe = pipe.to(device)
    if compile_:
        (getattr(pipe, "transformer", None) or pipe.unet).compile()
    return pipe


def make_engine(spec: Spec, device: str, offload: bool, compile_: bool, models_dir: Path) -> tuple[Any, bool]:
    """A LocalEngine serving the preset at this bench's size and steps; whether it places the
    pipeline itself (its `adopt` with offload and compile) or the bench must."""
    from openmj.engines.local.engine import LocalEngine
    from openmj.engines.local.presets import resolve_preset

    preset = replace(
        resolve_preset(spec.name),
        native_size=spec.side,
        steps=spec.steps,
        guidance=spec.guidance,
        lora=None,  # random weights: a fused LoRA would change no shape and no cost
        ip_adapter=None,
        controlnet=None,
        segmenter=None,
    )
    accepted = set(inspect.signature(LocalEngine.__init__).parameters)
    kwargs: dict[str, Any] = {}
    if "cpu_offload" in accepted:
        kwargs["cpu_offload"] = offload
    if "compile" in accepted:
        kwargs["compile"] = compile_
    engine = LocalEngine(preset, models_dir, device=device, **kwargs)
    places = hasattr(engine.pipelines, "adopt") and (not offload or "cpu_offload" in kwargs)
    places = places and (not compile_ or "compile" in kwargs)
    return engine, places


def install(engine: Any, pipe: Any, device: str, dtype: Any, places: bool) -> str:
    pipes = engine.pipelines
    pipes.device, pipes.dtype = device, dtype  # the bench's dtype, not the one load() would pick
    if places:
        pipes.adopt(pipe)
        return "adopt"
    # TODO(adopt): Pipelines.adopt(pipe) is the way in; this is the fallback for a Pipelines
    # without it (or without offload/compile): the bench placed the pipeline, the engine gets it.
    pipes.pipe = pipe
    return "attributes"


def imagine_job(spec: Spec) -> Any:
    from openmj.core.tasks import Operation, Speed, Status, Task
    from openmj.engines.base import EngineJob

    task = Task(
        id="bench-gpu-1", owner="bench", dialect="openai", operation=Operation.IMAGINE, model="mj-v7",
        status=Status.PROCESSING, progress=0, prompt=PROMPT, spec={"prompt": {"text": PROMPT, "params": {}}},
        request={}, speed=Speed.FAST, seed=SEED, created_at=time.time(),
    )  # fmt: skip
    return EngineJob(task=task)


def check_plan(engine: Any, job: Any, spec: Spec, text: str) -> str:
    """'' when the engine's plan is the bare call's work, else what differs."""
    from openmj.engines.local.runners import plan_for

    plan = plan_for(engine.pipelines, job.task)
    seen = (list(plan.prompts), plan.width, plan.height, plan.steps, plan.guidance, list(plan.seeds))
    want = (
        [text] * spec.images,
        spec.side,
        spec.side,
        spec.steps,
        spec.guidance,
        [SEED + i for i in range(spec.images)],
    )
    if seen == want:
        return ""
    return f"the engine's plan differs from the bare call: {seen} vs {want}"


# ------------------------------------------------------------------------------------ timing
class Clock:
    def __init__(self, device: str) -> None:
        import torch

        self.torch = torch
        self.cuda = device.startswith("cuda")

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def time(self, fn: Callable[[], Any]) -> tuple[float, float | None]:
        """Seconds for fn() and the peak GPU memory (GiB) during it."""
        self.sync()
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        fn()
        self.sync()
        elapsed = time.perf_counter() - t
        peak = self.torch.cuda.max_memory_allocated() / 2**30 if self.cuda else None
        return elapsed, peak


def run_preset(spec: Spec, args: argparse.Namespace, device: str, dtype: Any, workdir: Path) -> Result:
    import torch

    from openmj.core.mapping import AESTHETIC_SUFFIX

    res = Result(spec.name, spec.side, spec.images, spec.steps, spec.guidance, device=device)
    res.dtype = str(dtype).removeprefix("torch.")
    res.offload, res.compile = args.offload, args.compile
    res.openmj_note = spec.engine_note
    clock = Clock(device)
    text = f"{PROMPT}, {AESTHETIC_SUFFIX}"  # what openmj's planner makes of PROMPT
    pipe = engine = None
    try:
        t0 = time.perf_counter()
        pipe = build_pipeline(spec.name, device, dtype, args.tiny, workdir)
        clock.sync()
        res.build_s = time.perf_counter() - t0
        res.pipeline = type(pipe).__name__
        n, size = weights(pipe)
        res.params_b, res.weights_gib = n / 1e9, size / 2**30

        job = None
        if spec.engine_supported:
            engine, places = make_engine(spec, device, args.offload, args.compile, workdir / "models")
            res.engine_install = install(engine, pipe, device, dtype, places)
            if res.engine_install == "attributes":
                pipe = place_bare(pipe, spec, device, args.offload, args.compile)
                engine.pipelines.pipe = pipe
                res.openmj_note = "Pipelines has no adopt(): pipe/device/dtype set directly (TODO: adopt)"
            pipe = engine.pipelines.pipe  # the bare side calls the very pipeline the engine runs
            job = imagine_job(spec)
            mismatch = check_plan(engine, job, spec, text)
            if mismatch:
                res.openmj_note = mismatch
        else:
            pipe = place_bare(pipe, spec, device, args.offload, args.compile)
        sched = pipe.scheduler
        res.scheduler = type(sched).__name__ + (
            f"({sched.config.timestep_spacing})" if "timestep_spacing" in sched.config else ""
        )

        def bare() -> None:
            gens = [torch.Generator("cpu").manual_seed(SEED + i) for i in range(spec.images)]
            out = pipe(
                prompt=[text] * spec.images,
                height=spec.side,
                width=spec.side,
                num_inference_steps=spec.steps,
                guidance_scale=spec.guidance,
                generator=gens,
            )
            assert len(out.images) == spec.images and out.images[0].size == (spec.side, spec.side)

        def served() -> None:
            from openmj.engines.base import JobControl

            result = engine.run(job, JobControl())
            assert len(result.images) == spec.images and result.images[0].size == (spec.side, spec.side)

        res.warmup_s, _ = clock.time(bare)  # includes torch.compile's compile with --compile
        if job is not None:
            res.openmj_warmup_s, _ = clock.time(served)
        bare_peaks: list[float] = []
        served_peaks: list[float] = []
        for _ in range(args.runs):  # alternating, so drift falls on both sides alike
            s, peak = clock.time(bare)
            res.bare_runs_s.append(s)
            bare_peaks += [peak] if peak is not None else []
            if job is not None:
                s, peak = clock.time(served)
                res.openmj_runs_s.append(s)
                served_peaks += [peak] if peak is not None else []
        res.bare_s = statistics.median(res.bare_runs_s)
        res.it_s = spec.steps / res.bare_s
        res.peak_vram_gib = max(bare_peaks) if bare_peaks else None
        if res.openmj_runs_s:
            res.openmj_s = statistics.median(res.openmj_runs_s)
            res.ratio = res.openmj_s / res.bare_s
            res.openmj_peak_vram_gib = max(served_peaks) if served_peaks else None
        res.target = verdict(res, spec, args)
    except Exception as exc:  # one preset failing (out of memory…) must not cost the others
        res.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        traceback.print_exc(limit=6)
    finally:
        if pipe is not None and args.offload:
            with contextlib.suppress(Exception):
                pipe.remove_all_hooks()
        pipe = engine = None  # drop the weights before the next preset
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return res


def verdict(res: Result, spec: Spec, args: argparse.Namespace) -> str:
    if args.tiny or not res.device.startswith("cuda"):
        return "n/a (not a GPU run)"
    if spec.steps != 4 or spec.side != TARGET_SIDE or spec.images != TARGET_IMAGES:
        return "n/a (the target is for a 4-step 4 × 1024² grid)"
    best = res.openmj_s if res.openmj_s is not None else res.bare_s
    assert best is not None
    side = "openmj" if res.openmj_s is not None else "bare"
    return f"{'meets' if best < TARGET_S else 'misses'} ({side} {best:.2f} s vs {TARGET_S:.0f} s)"


# ------------------------------------------------------------------------------------ output
COLUMNS = [
    ("preset", "preset"),
    ("side", "side"),
    ("images", "imgs"),
    ("steps", "steps"),
    ("build_s", "build s"),
    ("bare_s", "bare s/grid"),
    ("openmj_s", "openmj s/grid"),
    ("ratio", "openmj ÷ bare"),
    ("it_s", "it/s"),
    ("peak_vram_gib", "peak VRAM GiB"),
    ("weights_gib", "weights GiB"),
    ("target", "target"),
]


def cell(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(value)


def print_table(results: list[Result], header: list[str]) -> None:
    rows = [[cell(getattr(r, key)) for key, _ in COLUMNS] for r in results]
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="openmj GPU benchmark", caption="\n".join(header), caption_justify="left")
        for _, title in COLUMNS:
            table.add_column(title, overflow="fold")
        for row in rows:
            table.add_row(*row)
        Console(width=max(150, shutil.get_terminal_size((160, 24)).columns)).print(table)
    except ImportError:
        titles = [t for _, t in COLUMNS]
        widths = [max(len(t), *(len(r[i]) for r in rows)) for i, t in enumerate(titles)]
        print(" | ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True)))
        print("-+-".join("-" * w for w in widths))
        for row in rows:
            print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        print("\n".join(header))
    for r in results:
        if r.openmj_note:
            print(f"{r.preset}: openmj column: {r.openmj_note}")
        if r.error:
            print(f"{r.preset}: FAILED: {r.error}")
        if r.scheduler:
            n = r.params_b or 0.0
            count = f"{n:.2f} B" if n >= 1 else f"{n * 1000:.1f} M"
            print(f"{r.preset}: {r.pipeline}, {r.scheduler}, {count} parameters, {r.dtype}")


def environment(device: str, dtype: Any, args: argparse.Namespace) -> dict[str, Any]:
    import diffusers
    import torch
    import transformers

    env: dict[str, Any] = {
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "attention": "SDPA (torch.nn.functional.scaled_dot_product_attention)",
        "offload": args.offload,
        "compile": args.compile,
        "tiny": args.tiny,
        "runs": args.runs,
        "cpu_threads": torch.get_num_threads(),
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        env["gpu"] = props.name
        env["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
    return env


def header_lines(env: dict[str, Any]) -> list[str]:
    where = (
        f"{env['gpu']} ({env['gpu_memory_gib']} GiB)"
        if "gpu" in env
        else f"CPU ({env['cpu_threads']} threads)"
    )
    flags = [k for k in ("offload", "compile", "tiny") if env[k]]
    return [
        f"{where}, {env['dtype']}, {env['attention']}; torch {env['torch']}, diffusers {env['diffusers']}, "
        f"transformers {env['transformers']}{'; ' + ', '.join(flags) if flags else ''}",
        f"random weights, real shapes{' (scaled down: --tiny)' if env['tiny'] else ''}; "
        f"medians of {env['runs']} runs per side after one warm-up each, sides alternating",
        f"target: a {TARGET_IMAGES}-image {TARGET_SIDE}² grid in under {TARGET_S:.0f} s "
        "on one H100-class GPU for a 4-step preset",
    ]


def write_json(path: Path, env: dict[str, Any], results: list[Result]) -> None:
    from dataclasses import asdict

    body = {"environment": env, "target_s": TARGET_S, "results": [asdict(r) for r in results]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2) + "\n")


# ------------------------------------------------------------------------------------ main
def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", action="append", choices=PRESET_NAMES, help="repeatable; default: all four")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per side after one warm-up")
    ap.add_argument("--side", type=int, default=None, help="image side in pixels (default 1024; --tiny 128)")
    ap.add_argument("--images", type=int, default=TARGET_IMAGES, help="images per grid")
    ap.add_argument("--steps", type=int, default=None, help="override the preset's steps")
    ap.add_argument("--offload", action="store_true", help="enable_model_cpu_offload()")
    ap.add_argument("--compile", action="store_true", help="torch.compile the transformer / UNet")
    ap.add_argument(
        "--dtype", choices=("bf16", "fp16", "fp32"), default=None, help="default bf16 (fp32 on CPU)"
    )
    ap.add_argument("--device", default=None, help="default cuda (cpu with --tiny)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here (after every preset)")
    ap.add_argument("--tiny", action="store_true", help="scaled-down configs on CPU at 128², 2 steps")
    ap.add_argument("--budget-s", type=float, default=None, help="start no preset after this many seconds")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    import torch

    device = args.device or ("cpu" if args.tiny else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here: run with --tiny for the CPU check of this script", file=sys.stderr)
        return 2
    names = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    dtype = (
        names[args.dtype] if args.dtype else torch.bfloat16 if device.startswith("cuda") else torch.float32
    )
    if device == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))  # as LocalEngine.load does on CPU
    side = args.side or (128 if args.tiny else TARGET_SIDE)
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", message=".*invalid value encountered in cast.*")  # random weights

    env = environment(device, dtype, args)
    header = header_lines(env)
    for line in header:
        print(line, flush=True)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="openmj-bench-gpu-") as tmp:
        for name in args.preset or PRESET_NAMES:
            spec = preset_spec(name, side, args.images, args.tiny, args.steps)
            if args.budget_s is not None and time.perf_counter() - start > args.budget_s:
                results.append(
                    Result(
                        name, side, args.images, spec.steps, spec.guidance, error="skipped: --budget-s spent"
                    )
                )
                continue
            print(
                f"{name}: building and timing ({spec.steps} steps, guidance {spec.guidance:g}, {side}²)…",
                flush=True,
            )
            res = run_preset(spec, args, device, dtype, Path(tmp))
            results.append(res)
            print(
                f"{name}: build {cell(res.build_s)} s, bare {cell(res.bare_s)} s/grid, "
                f"openmj {cell(res.openmj_s)} s/grid" + (f", FAILED: {res.error}" if res.error else ""),
                flush=True,
            )
            if args.json:
                write_json(args.json, env, results)
    env["wall_s"] = round(time.perf_counter() - start, 1)
    print()
    print_table(results, header)
    print(f"wall time {env['wall_s']} s")
    if args.json:
        write_json(args.json, env, results)
    return 1 if any(r.error and not r.error.startswith("skipped") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
