"""One request budget per workspace and process, and one HTTP request for identical polls.

Every request a process sends to a workspace passes its :class:`WorkspaceGate`:

- **Budget.** At most ``max_requests_per_second`` (connection extra; :data:`DEFAULT_MAX_REQUESTS_PER_SECOND`) in
  any one-second window, paced by a token bucket (GCRA: a request's slot is ``previous slot + 1/rate``, with short
  bursts of :data:`BURST_FRACTION` of the rate). Waiting for a slot is a
  sleep the driver carries out (``asyncio.sleep`` on the event loop), never an error. A 429 halves the rate (once per
  episode), pauses the workspace's requests for its Retry-After, and the rate then climbs back linearly to the budget
  over :data:`RECOVERY_SECONDS`. The first time waits are throttled the log says so, once per episode.
- **Sharing.** On the event loop, identical GETs (same credentials, path and query) in flight at once are one HTTP
  request whose response every caller gets; within a polling operation, a GET answered a short while ago
  (``poll_schedule.SHARED_ANSWER_FRACTION`` of the poll interval) is answered again without a request.
- **Spreading.** ``poll_schedule.aligned_pause`` ends a poller's sleep on its subject's slot of the poll interval,
  so waits on different updates spread their polls evenly (after a triggerer restart too) and waits on one update
  poll together.

The budget's state is a few floats under a lock, shared by threads and event loops; in-flight sharing is per loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from airflow_provider_lakeflow._engine.responses import RawResponse
from airflow_provider_lakeflow._engine.retrying import MAX_RETRY_AFTER_SECONDS
from airflow_provider_lakeflow.workspace.messages import encode_query

if TYPE_CHECKING:
    from airflow_provider_lakeflow._engine.auth import ConnectionSettings
    from airflow_provider_lakeflow._engine.retrying import Send
    from airflow_provider_lakeflow._engine.transport import Credentials

log = logging.getLogger(__name__)

#: Requests per second a process sends to one workspace unless the connection extra says otherwise.
DEFAULT_MAX_REQUESTS_PER_SECOND = 50.0
#: Requests admitted back to back before pacing starts, as a fraction of a second's budget (at least one).
BURST_FRACTION = 0.1
#: After a 429 halved the rate, seconds to climb back from zero to the full budget (linear).
RECOVERY_SECONDS = 60.0
#: The rate never drops below this many requests per second (or the budget, if lower).
MIN_RATE = 0.5
#: A request that waited this long for the budget counts as throttled (for the log).
THROTTLED_AFTER_SECONDS = 1.0
#: Throttling that starts again after this long without any is logged again.
QUIET_SECONDS = 300.0
#: Recent answers kept before the first sweep of stale ones.
SWEEP_AT_LEAST = 256


class WorkspaceGate:
    """The budget and the shared requests of one workspace in this process."""

    def __init__(self, name: str, limit: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.limit = float(limit)
        self.rate = self.limit
        self.clock = clock
        self._lock = threading.Lock()
        self._next = -math.inf  # the theoretical time of the next request at the current rate (GCRA)
        self._paused_until = -math.inf
        self._rate_at = clock()  # when the rate was last brought up to date
        self._shrink_until = -math.inf  # 429s until then belong to the episode that already shrank the rate
        self._last_throttled = -math.inf
        #: bumped when a 429 resets the schedule: a request that waited on an older slot takes a new one
        self.epoch = 0
        self._window: deque[float] = deque()  # when the requests of the last second went out
        self._inflight: dict[tuple[Any, ...], list[Any]] = {}
        #: recent 2xx answers by (credentials, path, query), as plain values: (when, status, reason, body, url, method)
        self._answers: dict[tuple[str, str, str], tuple[float, int, str, bytes, str, str]] = {}
        self._longest_max_age = 0.0
        self._sweep_above = SWEEP_AT_LEAST
        #: counters for tests and benchmarks
        self.sent = 0
        self.shared = 0
        self.throttled_responses = 0
        self.shrinks = 0

    # -- the budget (sans-IO: the caller sleeps) ---------------------------------------------------------------------
    def lower_limit(self, limit: float) -> None:
        """Connections to one workspace that set different budgets: the lowest applies."""
        with self._lock:
            if limit < self.limit:
                self.limit = float(limit)
                self.rate = min(self.rate, self.limit)

    def _recover(self, now: float) -> None:
        if self.rate < self.limit and now > self._rate_at:
            self.rate = min(self.limit, self.rate + (now - self._rate_at) * self.limit / RECOVERY_SECONDS)
        self._rate_at = max(now, self._rate_at)

    def _next_slot(self, now: float) -> tuple[float, float]:
        """(when a request may go, the slot of the one after it) at the current rate; the lock is held."""
        self._recover(now)
        interval = 1.0 / self.rate
        burst = max(1.0, self.rate * BURST_FRACTION)
        due = max(self._next, now)
        at = max(now, due - (burst - 1.0) * interval, self._paused_until)
        return at, max(due, at) + interval

    def _window_wait(self, now: float) -> float:
        """How long until the last second's window has room for one more request; the lock is held."""
        window = self._window
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= max(1.0, self.rate):
            return window[0] + 1.0 - now + 1e-3
        return 0.0

    def admit_now(self) -> bool:
        """The common case, under one lock: the budget has room this instant, so the request goes without a pause
        (counted as sent). False: take the slower way through :meth:`admission`."""
        with self._lock:
            now = self.clock()
            at, following = self._next_slot(now)
            if at > now or self._window_wait(now) > 0.0:
                return False
            self._next = following
            self._window.append(now)
            return True

    def reserve(self) -> tuple[float, int]:
        """Take the next slot: ``(seconds to wait for it, epoch)``."""
        with self._lock:
            now = self.clock()
            at, self._next = self._next_slot(now)
            delay = at - now
            epoch = self.epoch
        if delay >= THROTTLED_AFTER_SECONDS:
            self._throttling(now, f"waiting up to {delay:.1f}s for the request budget")
        return delay, epoch

    def admission(self) -> Iterator[float]:
        """The pauses before a request may go: sleep each one; a 429 meanwhile means a new slot (and more pauses).

        Slots are handed out ahead of time; a busy event loop can wake several sleepers late and together, so the
        request finally also checks the requests actually sent in the last second.
        """
        while True:
            delay, epoch = self.reserve()
            if delay > 0.0:
                yield delay
                if epoch != self.epoch:
                    continue
            while (late := self._record_send()) > 0.0:
                yield late
            return

    def _record_send(self) -> float:
        """Count this request as sent now, or say how long until the last second's window has room for it."""
        with self._lock:
            now = self.clock()
            late = self._window_wait(now)
            if late == 0.0:
                self._window.append(now)
            return late

    def observe(self, raw: RawResponse) -> None:
        """Every response passes here: a 429 shrinks the rate and pauses the workspace for its Retry-After."""
        if raw.status != 429:
            return
        retry_after = _retry_after(raw)
        with self._lock:
            now = self.clock()
            self.throttled_responses += 1
            self._paused_until = max(self._paused_until, now + retry_after)
            if now < self._shrink_until:
                return
            self._recover(now)
            self.rate = max(min(MIN_RATE, self.limit), self.rate / 2)
            self.shrinks += 1
            self.epoch += 1
            self._next = self._paused_until
            self._rate_at = self._paused_until
            self._shrink_until = self._paused_until
            rate = self.rate
        self._throttling(now, f"HTTP 429 (Retry-After {retry_after:g}s): budget lowered to {rate:.1f} requests/s")

    def _throttling(self, now: float, why: str) -> None:
        with self._lock:
            first = now - self._last_throttled > QUIET_SECONDS
            self._last_throttled = now
        if first:
            log.warning(
                "Requests to %s are being throttled (%s); waits slow down and none fails. Budget: %g requests/s "
                "per process (connection extra max_requests_per_second).",
                self.name,
                why,
                self.limit,
            )

    # -- the event loop: shared requests ----------------------------------------------------------------------------
    async def asend(self, credentials: Credentials, send: Send) -> RawResponse:
        """Send on the loop within the budget; identical GETs share one request (and a recent answer)."""
        request = send.request
        if request.method != "GET":
            return await self._asend_now(credentials, send)
        # Strings only (the credentials by their fingerprint, one per connection and settings): keys and remembered
        # answers are tuples of plain values, which the garbage collector stops tracking; a triggerer keeps one per
        # polled subject, and every full collection walks what is tracked.
        key = (credentials.fingerprint, request.path, encode_query(request.query))
        if send.max_age > 0.0:
            answer = self._answers.get(key)
            if answer is not None and self.clock() - answer[0] <= send.max_age:
                self.shared += 1
                # the headers of a 2xx answer are never read (only errors' and 429s' are)
                return RawResponse(answer[1], answer[2], {}, answer[3], answer[4], answer[5])
        loop = asyncio.get_running_loop()
        while True:
            entry = self._inflight.get(key)
            if entry is None or entry[0] is not loop:
                break
            self.shared += 1
            if entry[1] is None:  # the first caller to share this request makes the future they all wait on
                entry[1] = loop.create_future()
            raw = await asyncio.shield(entry[1])
            if raw is not None:
                return raw
            # the request was cancelled with the trigger that sent it: send our own
        # [loop, future of the answer or None]: most polls are shared with nobody, so no future until someone joins
        entry = [loop, None]
        self._inflight[key] = entry
        try:
            raw = await self._asend_now(credentials, send)
        except asyncio.CancelledError:
            if entry[1] is not None:
                entry[1].set_result(None)
            raise
        except BaseException as exc:
            if entry[1] is not None:
                entry[1].set_exception(exc)
                entry[1].exception()  # retrieved: nobody may be waiting for it any more
            raise
        else:
            if entry[1] is not None:
                entry[1].set_result(raw)
            if send.max_age > 0.0 and 200 <= raw.status < 300:
                self._remember(key, raw, send.max_age)
            return raw
        finally:
            if self._inflight.get(key) is entry:
                del self._inflight[key]

    async def _asend_now(self, credentials: Credentials, send: Send) -> RawResponse:
        if not self.admit_now():
            for pause in self.admission():
                await asyncio.sleep(pause)
        raw = await credentials.asend(send.request)
        self.sent += 1
        self.observe(raw)
        return raw

    def _remember(self, key: tuple[str, str, str], raw: RawResponse, max_age: float) -> None:
        now = self.clock()
        self._longest_max_age = max(self._longest_max_age, max_age)
        answers = self._answers
        answers[key] = (now, raw.status, raw.reason, raw.content, raw.url, raw.method)
        if len(answers) > self._sweep_above:
            # Answers past every poller's max age are dropped in one pass once the map has doubled: amortized O(1)
            # per poll, and at most twice as many answers as polled subjects are kept.
            oldest_kept = now - self._longest_max_age
            for stale in [k for k, answer in answers.items() if answer[0] < oldest_kept]:
                del answers[stale]
            self._sweep_above = max(SWEEP_AT_LEAST, 2 * len(answers))

    # -- blocking path ------------------------------------------------------------------------------------------------
    def send(self, credentials: Credentials, send: Send) -> RawResponse:
        """Send with blocking I/O within the same budget (a worker has no one to share requests with)."""
        if not self.admit_now():
            for pause in self.admission():
                time.sleep(pause)
        raw = credentials.send(send.request)
        self.sent += 1
        self.observe(raw)
        return raw


def _retry_after(raw: RawResponse) -> float:
    value = raw.headers.get("Retry-After") or raw.headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else 1.0
    except ValueError:
        seconds = 1.0  # an HTTP date: databricks-sdk also takes 1 s then
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


_GATES: dict[str, WorkspaceGate] = {}
_GATES_LOCK = threading.Lock()


def max_requests_per_second(settings: ConnectionSettings) -> float:
    return float(settings.provider_extras.get("max_requests_per_second") or DEFAULT_MAX_REQUESTS_PER_SECOND)


def gate_for(settings: ConnectionSettings) -> WorkspaceGate:
    """The process's gate for this connection's workspace (by host: connections to one workspace share it)."""
    name = settings.host or f"connection {settings.conn_id}"
    limit = max_requests_per_second(settings)
    gate = _GATES.get(name)
    if gate is None:
        with _GATES_LOCK:
            gate = _GATES.setdefault(name, WorkspaceGate(name, limit))
    if limit < gate.limit:
        gate.lower_limit(limit)
    return gate
