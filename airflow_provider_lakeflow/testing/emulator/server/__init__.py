"""HTTP in front of a ``Workspace``: the aiohttp app and its routes (``app``), the thin REST handlers (``handlers``),
and the middleware that injects faults, enforces auth and the rate limit, and records each request
(``middleware``)."""
