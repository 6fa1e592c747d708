"""Fault injection rules and the request log: what a test scripts about the network rather than the workspace."""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

FAULT_KINDS = ("status", "drop", "slow")
FAULT_WHEN = ("before", "after")
FAULT_BODIES = {
    429: ("REQUEST_LIMIT_EXCEEDED", "Too many requests. Please wait a moment and try again."),
    500: ("INTERNAL_ERROR", "Internal error (injected by the Lakeflow emulator)."),
    503: ("TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable. Please try again later."),
}


@dataclass
class Fault:
    pattern: re.Pattern[str]
    method: str | None
    kind: str
    status: int
    retry_after: int | float | None
    remaining: int | None  # None: forever
    delay: float
    when: str

    def body(self) -> dict[str, str]:
        code, message = FAULT_BODIES.get(self.status, (f"HTTP_{self.status}", f"Injected HTTP {self.status}."))
        return {"error_code": code, "message": message}


class FaultRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        path_regex: str,
        *,
        method: str | None = None,
        kind: str = "status",
        status: int = 429,
        retry_after: int | float | None = None,
        count: int | None = 1,
        delay: float = 0.0,
        when: str = "before",
    ) -> None:
        """Answer requests whose path matches ``path_regex`` (and ``method``) with a fault, ``count`` times (None:
        always): ``kind`` status (``status``, with Retry-After when ``retry_after`` is set), drop (close the
        connection) or slow (sleep ``delay`` first); ``when`` after: once the request was handled."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}, got {kind!r}")
        if when not in FAULT_WHEN:
            raise ValueError(f"when must be one of {FAULT_WHEN}, got {when!r}")
        fault = Fault(
            re.compile(path_regex),
            method.upper() if method else None,
            kind,
            int(status),
            retry_after,
            count,
            float(delay),
            when,
        )
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Forget every fault not used up yet."""
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The first matching fault, consuming one of its uses. Cheap when no fault is set (the common case)."""
        if not self._faults:
            return None
        with self._lock:
            for fault in self._faults:
                if (fault.method is None or fault.method == method) and fault.pattern.search(path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
                    return fault
        return None


@dataclass
class RecordedRequest:
    """One request as the emulator saw it. ``auth`` is pat/oauth/none/invalid; the token itself is never kept."""

    method: str
    path: str
    query: dict[str, Any]
    body: Any
    status: int
    auth: str
    user_agent: str | None
    time: float
    #: the client's TCP source port: distinct values count the connections a client opened (benchmarks, tests)
    client_port: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    def __init__(self, maxlen: int = 100_000) -> None:
        self._items: deque[RecordedRequest] = deque(maxlen=maxlen)

    def add(self, item: RecordedRequest) -> None:
        self._items.append(item)  # deque.append is atomic

    def clear(self) -> None:
        self._items.clear()

    def select(self, path_regex: str | None = None, method: str | None = None) -> list[RecordedRequest]:
        rx = re.compile(path_regex) if path_regex else None
        m = method.upper() if method else None
        return [r for r in list(self._items) if (m is None or r.method == m) and (rx is None or rx.search(r.path))]
