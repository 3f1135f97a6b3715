"""The providers file (`openmj serve --providers FILE`, TOML): upstream Midjourney APIs by tier.

```toml
[[providers]]
name = "kie-main"
dialect = "kie"                 # evolink | kie | apixo | mjproxy | local (this server's engine)
base_url = "https://api.kie.ai"
key_env = "KIE_API_KEY"         # or key = "…" (never logged, never shown)
priority = 10                   # higher tiers are tried first
weight = 3                      # weighted random inside a tier
operations = ["imagine", "upscale", "variation"]   # optional: default every one its API can express
max_concurrency = 50
timeout_s = 30
poll_s = 3                      # optional: how often a task is polled (default per API)
lost_after_s = 120              # optional: unreachable this long while polling → fail over
callbacks = true                # optional: ask the upstream to call back (default: when the
                                # gateway's public URL is https, which upstreams require)
cost = { imagine = 0.05, upscale = 0.02, "*" = 0.04 }   # optional: what a task costs you there
cost_unit = "USD"               # optional: the unit of `cost` (`openmj usage` sums it)
```
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from openmj.core.routing import END_FRAME, LOOP
from openmj.core.tasks import Operation

Dialect = Literal["evolink", "kie", "apixo", "mjproxy", "local"]

#: what each upstream API can be asked to do (docs/relay.md has the wire calls)
_O = Operation
EXPRESSIBLE: dict[str, frozenset[Operation]] = {
    "evolink": frozenset(
        {_O.IMAGINE, _O.UPSCALE, _O.VARIATION, _O.REMIX, _O.ZOOM, _O.PAN, _O.ENHANCE, _O.INPAINT}
        | {_O.EDIT, _O.UPLOAD_PAINT, _O.RETEXTURE, _O.REMOVE_BG}
    ),
    "kie": frozenset({_O.IMAGINE, _O.UPSCALE, _O.VARIATION, _O.VIDEO, _O.VIDEO_EXTEND}),
    "mjproxy": frozenset(
        {_O.IMAGINE, _O.UPSCALE, _O.VARIATION, _O.REROLL, _O.ZOOM, _O.PAN, _O.MAKE_SQUARE, _O.INPAINT}
        | {_O.VIDEO, _O.VIDEO_EXTEND, _O.VIDEO_UPSCALE, _O.BLEND, _O.DESCRIBE, _O.SHORTEN, _O.RETEXTURE}
    ),
    "apixo": frozenset(
        {_O.IMAGINE, _O.UPSCALE, _O.VARIATION, _O.REROLL, _O.ENHANCE, _O.EDIT, _O.UPLOAD_PAINT}
    ),
}
#: what some APIs can add to an operation (core/routing.py `needs`): midjourney-proxy's video
#: takes an `endImage` and `loop`; kie.ai's has neither
EXTRAS: dict[str, frozenset[str]] = {"mjproxy": frozenset({END_FRAME, LOOP})}
#: follow-ups an API takes as the source picture itself (a link or the image), not as its own task
#: id: any provider of that API can run them, whichever made the source; every other follow-up
#: goes only to the provider that made its source
BY_PICTURE: dict[str, frozenset[Operation]] = {
    "evolink": frozenset(),
    "kie": frozenset({_O.VIDEO}),
    "mjproxy": frozenset({_O.VIDEO}),
    "apixo": frozenset({_O.EDIT}),
}
#: the pace each API's documentation recommends for status polling, seconds
POLL_SECONDS = {"evolink": 3.0, "kie": 3.0, "apixo": 3.0, "mjproxy": 3.0, "local": 0.0}


class Provider(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    dialect: Dialect
    base_url: str = ""
    key: SecretStr | None = None
    key_env: str | None = None
    priority: int = 0
    weight: float = Field(default=1.0, gt=0)
    models: list[str] | None = None
    operations: list[Operation] | None = None
    max_concurrency: int = Field(default=100, ge=1)
    timeout_s: float = Field(default=30.0, gt=0)
    poll_s: float | None = Field(default=None, gt=0)
    # a task whose upstream cannot be reached this long (and POLL_FAILURES polls) is given up there
    lost_after_s: float = Field(default=120.0, ge=0)
    callbacks: bool | None = None  # None: when the gateway's public URL is https
    # what the operator pays the upstream per task, by operation ("*": the rest), for `openmj usage`
    cost: dict[str, float] = Field(default_factory=dict)
    cost_unit: str = Field(default="", max_length=16)

    def cost_of(self, operation: Operation) -> float | None:
        value = self.cost.get(operation.value, self.cost.get("*"))
        return None if value is None else float(value)

    @field_validator("cost")
    @classmethod
    def _cost(cls, value: dict[str, float]) -> dict[str, float]:
        known = {o.value for o in Operation} | {"*"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"cost names no operation: {', '.join(unknown)}")
        if any(v < 0 for v in value.values()):
            raise ValueError("a cost cannot be negative")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value

    @property
    def secret(self) -> str:
        """The upstream key: `key`, else the environment variable `key_env` ("" if neither)."""
        if self.key is not None:
            return self.key.get_secret_value()
        return os.environ.get(self.key_env, "") if self.key_env else ""

    @property
    def serves(self) -> frozenset[Operation]:
        if self.dialect == "local":
            return frozenset(Operation)  # whatever this server's engine supports
        can = EXPRESSIBLE[self.dialect]
        return can & frozenset(self.operations) if self.operations is not None else can

    @property
    def offers(self) -> frozenset[str]:
        """What it can be asked (core/routing.py `needs`): its operations and their extras."""
        extras = EXTRAS.get(self.dialect, frozenset()) if Operation.VIDEO in self.serves else frozenset()
        return frozenset(o.value for o in self.serves) | extras

    def takes_picture(self, operation: Operation) -> bool:
        """It runs this follow-up from the source picture, not from its own task id."""
        return self.dialect == "local" or operation in BY_PICTURE[self.dialect]

    @property
    def poll_seconds(self) -> float:
        return self.poll_s if self.poll_s is not None else POLL_SECONDS[self.dialect]

    def __repr__(self) -> str:  # the key never appears in logs or tracebacks
        return f"Provider({self.name!r}, {self.dialect}, {self.base_url!r}, priority={self.priority})"


class ProvidersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    providers: list[Provider] = Field(min_length=1)


class ProvidersError(ValueError):
    """The providers file cannot be used; the message names the file and the problem."""


def load_providers(path: Path) -> list[Provider]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ProvidersError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProvidersError(f"{path}: not valid TOML ({exc})") from None
    try:
        providers = ProvidersFile.model_validate(data).providers
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProvidersError(f"{path}: {where}: {first['msg']}") from None
    names = [p.name for p in providers]
    if len(set(names)) != len(names):
        raise ProvidersError(f"{path}: provider names must be unique ({', '.join(names)})")
    for p in providers:
        if p.dialect != "local" and not p.base_url:
            raise ProvidersError(f"{path}: provider {p.name!r} needs a base_url")
        if p.key_env and p.key is None and p.key_env not in os.environ:
            raise ProvidersError(
                f"{path}: provider {p.name!r}: the environment variable {p.key_env} is not set"
            )
    return providers
