"""/readyz: whether this node can do its job now — the database answers, its schema is the one
this code expects, the media store can be written. A load balancer sends requests only to nodes
that say yes (docs/deployment.md, "Health and readiness")."""

from __future__ import annotations

import asyncio
import logging

from openmj.media.backend import MediaBackend
from openmj.store.db import Database, head_revision

log = logging.getLogger("openmj.readiness")

# a probe that hangs is a failed probe: load balancers check every few seconds
PROBE_TIMEOUT = 3.0


async def probe(db: Database, media: MediaBackend) -> dict[str, str]:
    """{check: "ok" or what is wrong} for the database, its migrations and the media store."""
    checks: dict[str, str] = {}
    try:
        revision = await asyncio.wait_for(db.revision(), PROBE_TIMEOUT)
        checks["database"] = "ok"
        head = head_revision()
        checks["migrations"] = (
            "ok" if revision == head else f"at {revision or 'none'}, this code needs {head}"
        )
    except TimeoutError:
        checks["database"] = checks["migrations"] = f"no answer within {PROBE_TIMEOUT:g} s"
    except Exception as exc:  # the details go to the log: /readyz answers anyone who asks
        log.warning("readiness: the database failed its probe: %s", exc)
        checks["database"] = checks["migrations"] = f"unreachable ({type(exc).__name__})"
    try:
        await asyncio.wait_for(asyncio.to_thread(media.check), PROBE_TIMEOUT)
        checks["media"] = "ok"
    except TimeoutError:
        checks["media"] = f"no answer within {PROBE_TIMEOUT:g} s"
    except OSError as exc:
        log.warning("readiness: the media store failed its probe: %s", exc)
        checks["media"] = f"unreachable or not writable ({type(exc).__name__})"
    return checks
