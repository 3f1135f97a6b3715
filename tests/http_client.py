"""One HTTP client for the suite's one-off requests (a health probe, a result download).

`httpx.get(...)` builds a client per call, and each client loads the CA bundle: about 0.1 s of
CPU, which a health poll every 0.1 s while a server starts turns into a whole core. `HTTP` is
built once; it keeps no connection alive, so a server restarted on the same port is never reached
through a stale one. `SSL` is the same verified context for the clients tests build themselves.
"""

from __future__ import annotations

import ssl

import certifi
import httpx

SSL = ssl.create_default_context(cafile=certifi.where())
HTTP = httpx.Client(verify=SSL, limits=httpx.Limits(max_keepalive_connections=0))
