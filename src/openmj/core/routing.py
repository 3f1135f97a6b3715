"""Which loaded model runs a task: the version map (Midjourney version → model) and each model's caps.

A deployment serves one or more models (`--model A --model B`); the first is the main model.
Midjourney users choose a version (`--v 7`, `--niji 7`, kie `version`, APIXO `version`,
midjourney-proxy `botType`, EvoLink `mj-v8.1`), and the version map sends each to a model:
the most specific key wins ("niji 7", then "niji"; "6.1", then "6"), then "default" (the main
model). Follow-ups run on the model that made their source image, so an upscale of a Niji grid is
done by the Niji model. docs/models.md (several models) has the defaults and examples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from openmj.core.families import Family, family
from openmj.core.spec import UpstreamSpec
from openmj.core.tasks import ErrorCode, Operation, Task, TaskError
from openmj.core.video import VIDEO_OPERATIONS

DEFAULT_KEY = "default"


@dataclass(frozen=True)
class ModelCaps:
    """What a served model can do, known without loading it (from its preset)."""

    name: str = "model"
    references: bool = True  # --sref / --oref can be honoured (an IP-Adapter, or natively)
    segmenter: bool = True
    video: bool = False  # a video model is configured (--video-model)
    describe: bool = False  # a captioning model is configured (--caption-model)
    operations: frozenset[Operation] | None = None  # what it can run (a relay: what its providers express)
    family: str = "sd15"
    # a relay without a local provider: what each provider can do (`needs`); a task must fit one
    offers: tuple[frozenset[str], ...] | None = None

    @property
    def traits(self) -> Family:
        return family(self.family)


#: what a video may ask beyond its operation that not every upstream API can express
END_FRAME, LOOP = "video.end_frame", "video.loop"
_NEED_WORDS = {END_FRAME: "with an end frame", LOOP: "as a loop"}


def needs(operation: Operation, spec: Mapping[str, Any]) -> frozenset[str]:
    """What a task asks of whoever runs it: its operation, and the extras only some upstream APIs
    can express (docs/relay.md, "What each upstream API is asked")."""
    video = spec.get("video") or {}
    extra = {END_FRAME} if video.get("end_url") else set()
    extra |= {LOOP} if video.get("loop") else set()
    return frozenset({operation.value, *extra})


def needs_text(wanted: frozenset[str], operation: Operation) -> str:
    """E.g. "video with an end frame": a task's needs in words, for refusals."""
    return " ".join([operation.value, *(_NEED_WORDS[n] for n in sorted(wanted) if n in _NEED_WORDS)])


def require_offered(caps: ModelCaps, operation: Operation, spec: Mapping[str, Any]) -> None:
    """A relayed task that no single provider can run is refused at submit, before any charge."""
    wanted = needs(operation, spec)
    if caps.offers is not None and not any(wanted <= offer for offer in caps.offers):
        raise TaskError(
            ErrorCode.NOT_SUPPORTED,
            f"'{needs_text(wanted, operation)}' is not supported by this server: "
            "none of its providers offers it",
            400,
        )


def pinned_source(parent: Task | None, index: int | None) -> UpstreamSpec | None:
    """A follow-up of a relayed task goes to the provider that made it, naming that provider's own
    task (docs/relay.md): the parent's upstream note, with the image the action is on."""
    upstream = (parent.output or {}).get("upstream") if parent is not None else None
    if not upstream or not upstream.get("task_id"):
        return None
    return {"provider": str(upstream["provider"]), "task_id": str(upstream["task_id"]), "index": index or 0}


def version_keys(version: str) -> list[str]:
    """The map keys a version matches, most specific first: "niji 7" → ["niji 7", "niji"];
    "6.1" → ["6.1", "6"]; then "default"."""
    v = version.strip().lower()
    keys = [v]
    if v.startswith("niji"):
        keys.append("niji")
    elif "." in v:
        keys.append(v.split(".")[0])
    return [*dict.fromkeys(keys), DEFAULT_KEY]


@dataclass(frozen=True)
class ServedModels:
    """The models this deployment serves, in order (the first is the main model), and the map."""

    caps: Mapping[str, ModelCaps]
    version_map: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def single(cls, caps: ModelCaps) -> ServedModels:
        return cls({caps.name: caps})

    @classmethod
    def build(cls, caps: list[ModelCaps], version_map: Mapping[str, str] | None = None) -> ServedModels:
        """The served models with the map completed by the defaults: "default" → the main model,
        and with a second model and no "niji" entry, niji → the second model (the anime-leaning
        slot Midjourney gives Niji). A map entry naming a model that is not served is a
        configuration error (raised here, at start), never a task that waits forever."""
        if not caps:
            raise ValueError("at least one model must be served")
        names = [c.name for c in caps]
        vmap = {version_keys(k)[0] if k != DEFAULT_KEY else k: v for k, v in (version_map or {}).items()}
        for key, target in vmap.items():
            if target not in names:
                raise ValueError(
                    f"the version map sends '{key}' to '{target}', which is not served "
                    f"(served: {', '.join(names)}); add --model {target} or change the map"
                )
        vmap.setdefault(DEFAULT_KEY, names[0])
        if len(names) > 1:
            vmap.setdefault("niji", names[1])
        return cls({c.name: c for c in caps}, vmap)

    @property
    def main(self) -> str:
        return next(iter(self.caps))

    @property
    def names(self) -> list[str]:
        return list(self.caps)

    def for_version(self, version: str) -> str:
        vmap = {DEFAULT_KEY: self.main, **self.version_map}
        for key in version_keys(version):
            if key in vmap:
                return vmap[key]
        return self.main

    def route(self, operation: Operation, version: str, parent: Task | None) -> ModelCaps:
        """The model a new task runs on. Video and describe run where the video and captioning
        models are loaded (the main model's worker); an action runs on its source's model, which
        must still be served."""
        if operation in VIDEO_OPERATIONS or operation is Operation.DESCRIBE:
            return self.caps[self.main]
        if parent is not None and parent.engine_model:
            caps = self.caps.get(parent.engine_model)
            if caps is None:
                raise TaskError(
                    ErrorCode.NOT_SUPPORTED,
                    f"The model '{parent.engine_model}' that made task {parent.id} is not served here "
                    f"any more (served: {', '.join(self.names)})",
                    400,
                )
            return caps
        return self.caps[self.for_version(version)]
