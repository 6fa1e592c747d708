"""A per-workspace request rate limit, as Databricks enforces one: HTTP 429 with Retry-After beyond it.

Off by default. ``set_rate_limit(requests_per_second, burst)`` (control call) or ``--rate-limit`` (CLI) turns on a
token bucket over the ``/api/`` routes (OAuth, discovery and control routes are not limited); a request beyond it
gets ``429 {"error_code": "REQUEST_LIMIT_EXCEEDED"}`` and ``Retry-After`` (whole seconds until a token is free, at
least 1). Whether limited or not, the emulator counts the ``/api/`` requests it sees: ``request_rate()`` reports
their number, the 429s, the mean rate, and the peak rate over any one-second window and over any five-second window
(less sensitive to a client or server that was descheduled for a moment and then sent or read several at once).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any


class RateLimit:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.requests_per_second: float | None = None
        self.burst = 0.0
        self._tokens = 0.0
        self._updated = 0.0
        self.clear_stats()

    def configure(self, requests_per_second: float | None, burst: float | None = None) -> None:
        """``requests_per_second`` None (or 0) lifts the limit; ``burst`` defaults to one second's worth."""
        if requests_per_second is not None and requests_per_second < 0:
            raise ValueError("requests_per_second must be positive (or null to lift the limit)")
        if burst is not None and burst < 1:
            raise ValueError("burst must be at least 1")
        with self._lock:
            self.requests_per_second = float(requests_per_second) if requests_per_second else None
            rate = self.requests_per_second or 0.0
            self.burst = float(burst) if burst is not None else max(1.0, rate)
            self._tokens = self.burst
            self._updated = self._clock()

    def set(self, requests_per_second: float | None, burst: float | None = None) -> None:
        """Answer ``/api/`` requests beyond ``requests_per_second`` (bursts of ``burst``, default one second's worth)
        with 429 and Retry-After; None lifts the limit. Also restarts the counts of ``request_rate``."""
        self.configure(requests_per_second, burst)
        self.clear_stats()

    def clear_stats(self) -> None:
        with self._lock:
            self._window: deque[float] = deque()
            self._window_5s: deque[float] = deque()
            self._peak_5s = 0
            self._count = 0
            self._throttled = 0
            self._peak = 0
            self._first: float | None = None
            self._last: float | None = None

    def admit(self) -> int | None:
        """Count one request; None to serve it, or the Retry-After (seconds) of its 429."""
        with self._lock:
            now = self._clock()
            self._count += 1
            self._first = now if self._first is None else self._first
            self._last = now
            window = self._window
            window.append(now)
            while window[0] <= now - 1.0:
                window.popleft()
            self._peak = max(self._peak, len(window))
            window = self._window_5s
            window.append(now)
            while window[0] <= now - 5.0:
                window.popleft()
            self._peak_5s = max(self._peak_5s, len(window))
            rate = self.requests_per_second
            if rate is None:
                return None
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * rate)
            self._updated = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            self._throttled += 1
            return max(1, math.ceil((1.0 - self._tokens) / rate))

    def stats(self) -> dict[str, Any]:
        """The ``/api/`` requests seen since the last ``set_rate_limit``/``reset``: ``requests``, ``throttled``
        (429s of the rate limit), ``peak_per_second`` (any one-second window), ``peak_per_second_over_5s`` (any
        five-second window, divided by 5), ``mean_per_second``."""
        with self._lock:
            span = (self._last - self._first) if self._first is not None and self._last is not None else 0.0
            return {
                "requests": self._count,
                "throttled": self._throttled,
                "peak_per_second": self._peak,
                "peak_per_second_over_5s": self._peak_5s / 5.0,
                "mean_per_second": self._count / span if span > 0 else float(self._count),
                "requests_per_second": self.requests_per_second,
                "burst": self.burst if self.requests_per_second else None,
            }
