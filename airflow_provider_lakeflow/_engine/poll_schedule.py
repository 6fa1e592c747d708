"""When pollers poll: pauses that end on a subject's own slot of the poll interval, one timer per tick of the event
loop for every sleeping poller, and how long a poll's answer may be shared with another poller of the same subject.

Waits on one update therefore poll together and share one request per poll (``budget``'s in-flight sharing and the
plan's recent answers in ``retrying``), and waits on different updates spread their polls over the interval.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
import zlib

#: Within a polling operation, a GET answered for someone else this fraction of the poll interval ago is as good as
#: a fresh one (two sensors on one update, started a little apart, share their polls).
SHARED_ANSWER_FRACTION = 0.1


def aligned_pause(seconds: float, interval: float, phase: str, now: float | None = None) -> float:
    """How long to sleep so that the pause ends on ``phase``'s slot of ``interval``, about ``seconds`` from now.

    A subject's slot is a fixed offset within the interval (from a hash of the subject, on the wall clock): pollers of
    one subject meet on it, pollers of different subjects spread evenly. The pause ends on the first slot at least
    ``seconds - interval / 2`` ahead: a first poll (``seconds`` 0) lands within one interval, a regular one
    (``seconds`` = interval) stays on its slot.
    """
    if interval <= 0.0:
        return seconds
    now = time.time() if now is None else now
    offset = (zlib.crc32(phase.encode()) / 2**32) * interval
    earliest = now + max(0.0, seconds - interval / 2)
    slot = offset + math.ceil((earliest - offset) / interval) * interval
    return max(0.0, slot - now)


#: Pollers due within the same tick of the event loop's clock wake together, on one timer.
TICK_SECONDS = 0.02


class PollTicks:
    """Per event loop: wakes pollers at their slots on one timer per tick instead of one ``asyncio.sleep`` each.

    A thousand sleeping waits then hold a future each (not a timer, a context and a coroutine besides), and the loop's
    timer heap holds one entry per tick instead of one per wait. Wakes are at most one tick late.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._due: dict[int, list[asyncio.Future[None]]] = {}
        #: the wake-up only completes futures (each sleeper resumes in its own context): no context copy per tick
        self._context = contextvars.Context()

    def sleep(self, seconds: float) -> asyncio.Future[None]:
        """A future done about ``seconds`` from now (await it; a plain function: no coroutine per sleep)."""
        tick = math.ceil((self.loop.time() + seconds) / TICK_SECONDS)
        sleepers = self._due.get(tick)
        if sleepers is None:
            sleepers = self._due[tick] = []
            self.loop.call_at(tick * TICK_SECONDS, self._wake, tick, context=self._context)
        future = self.loop.create_future()  # one per sleeper: cancelling one wait cancels nobody else's sleep
        sleepers.append(future)
        return future

    def _wake(self, tick: int) -> None:
        for future in self._due.pop(tick, ()):
            if not future.done():
                future.set_result(None)
