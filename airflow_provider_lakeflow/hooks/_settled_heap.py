"""Keep waits that have settled into their polling out of the garbage collector's full passes.

A deferred wait keeps a few dozen objects for as long as it waits (the trigger, its task, the polling operation's
frames). CPython's collector walks every one of them on each full collection, holding the event loop: with 10,000
waits in a triggerer that is a 300 ms stall, several times a minute while waits arrive (docs/performance.md). With
``[lakeflow] gc_freeze`` on, a wait reports when it has settled (before its first poll, and after it); once
:data:`FREEZE_BATCH` waits have settled, and at most every :data:`FREEZE_SPACING_SECONDS`, ``gc.freeze()`` moves
everything alive into the permanent generation, so full collections walk only what came later.

Frozen objects are still freed by reference counting, which is how a finished wait's objects go; only a reference
cycle among frozen objects is never collected. ``tests/test_trigger_event_loop.py`` measures that: what 1,000
finished waits leave frozen behind them, and what the collector finds once everything is thawed.
"""

from __future__ import annotations

import asyncio
import gc
import math
import threading
import time

#: Waits that settle between two freezes (a trickle of waits never freezes on every one).
FREEZE_BATCH = 200
#: Seconds between two freezes at least.
FREEZE_SPACING_SECONDS = 0.1


class SettledHeap:
    """Counts settled waits and freezes the heap in batches (one per process)."""

    def __init__(self, batch: int = FREEZE_BATCH, spacing: float = FREEZE_SPACING_SECONDS) -> None:
        self.batch = batch
        self.spacing = spacing
        self.waiting = 0  # settled since the last freeze
        self.freezes = 0
        self._last = -math.inf
        self._lock = threading.Lock()
        self._enabled: bool | None = None
        self._scheduled: asyncio.AbstractEventLoop | None = None  # the loop a coming freeze is scheduled on

    def enabled(self) -> bool:
        if self._enabled is None:
            from airflow_provider_lakeflow.hooks.lakeflow import gc_freeze_enabled

            self._enabled = gc_freeze_enabled()
        return self._enabled

    def settled(self) -> None:
        """A wait has built everything it keeps while it waits (called on the event loop)."""
        if not self.enabled():
            return
        with self._lock:
            self.waiting += 1
            if self.waiting < self.batch or (self._scheduled is not None and not self._scheduled.is_closed()):
                return
            delay = self._last + self.spacing - time.monotonic()
            if delay > 0.0:  # waits keep arriving: freeze them all once the spacing is over
                self._scheduled = asyncio.get_running_loop()
                self._scheduled.call_later(delay, self._freeze)
                return
        self._freeze()

    def _freeze(self) -> None:
        with self._lock:
            self._scheduled = None
            self.waiting = 0
            self._last = time.monotonic()
            self.freezes += 1
        gc.freeze()


SETTLED_HEAP = SettledHeap()
