"""`openmj providers check`: does each provider answer, is its key accepted, what is its balance."""

from __future__ import annotations

from dataclasses import dataclass

from openmj.relay.clients import client_for
from openmj.relay.health import KEY_REFUSED
from openmj.relay.providers import Provider
from openmj.relay.upstreams import Refused, UpstreamError
from openmj.store import health as store
from openmj.store.db import Database

#: each API's balance call and where the number is in its answer
BALANCE = {
    "evolink": ("/v1/credits", ("data", "token", "remaining_credits")),
    "kie": ("/api/v1/chat/credit", ("data",)),
    "apixo": ("/api/v1/apikeys/current-balance", ("data", "balance")),
    "mjproxy": ("/mj/task/list", ()),  # no balance call: a key-checked read stands in
}


@dataclass
class CheckResult:
    reachable: bool
    key: str  # "accepted", "refused", "-"
    balance: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reachable and self.key != "refused"


def check_provider(provider: Provider) -> CheckResult:
    if provider.dialect == "local":
        return CheckResult(True, "-", "-", "this server's own engine")
    path, where = BALANCE[provider.dialect]
    client = client_for(provider)
    try:
        data = client.call("GET", path)
    except UpstreamError as err:
        if err.key_refused:
            return CheckResult(True, "refused", "-", str(err))
        return CheckResult(False, "-", "-", str(err))
    except Refused as refused:  # it answered, but not this call (an older API version)
        return CheckResult(True, "accepted", "-", f"no balance: {refused}")
    value = data
    for key in where:
        value = value.get(key) if isinstance(value, dict) else None
    shown = "-" if not where or value is None else str(value)
    return CheckResult(True, "accepted", shown)


async def review_cooldowns(db: Database, results: dict[str, CheckResult], now: float) -> dict[str, str]:
    """Each provider's shared cool-down in words (store/health.py); one set for a refused key
    whose key `check` finds accepted now ends, for every node."""
    out = {}
    for name, (until, reason) in (await store.cooling(db, now)).items():
        result = results.get(name)
        if reason.startswith(KEY_REFUSED) and result is not None and result.key == "accepted":
            await store.clear(db, name)
            out[name] = "ended: the key is accepted"
        else:
            out[name] = f"{until - now:.0f} s more ({reason})"
    return out
