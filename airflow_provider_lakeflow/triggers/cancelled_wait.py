"""Airflow 3.1 and 3.2: a user's kill of a deferred task reaches its trigger only as the trigger's cancellation.

Their triggerer calls no ``BaseTrigger.on_kill`` (3.3 does). It cancels a trigger's asyncio task whenever no task
instance wants the trigger any more: after a user's kill (mark failed or success, clear, run deleted), after the
trigger moved to another triggerer (the same path, as on 3.3), and after Airflow's own trigger timeout. The trigger
sees ``asyncio.CancelledError`` where it awaits, and its Task SDK there can read the task's state from the
triggerer's supervisor, so the trigger does what 3.3's ``on_kill`` does: stop the remote work only when the task left
DEFERRED (:mod:`~airflow_provider_lakeflow.triggers.user_kill`), never after a move.

Two cancellations are not kills, and are let through without reading anything:

- the triggerer shutting down (a deploy, a restart): once the runner's main loop has ended, ``asyncio.run`` cancels
  every trigger still running; the task stays DEFERRED and another triggerer resumes the wait. A state read then
  would find no one to answer (3.2 has already stopped reading the supervisor's answers) and hold the shutdown.
- Airflow's trigger timeout, which 3.3 does not treat as a kill either.
"""

from __future__ import annotations

import asyncio
import datetime
import weakref
from typing import Any

#: The trigger runner's main coroutine on Airflow 3.1 and 3.2 (``asyncio.run(TriggerRunner().arun())``): while it
#: runs, a cancellation comes from its ``cancel_triggers``; once it has ended, from the shutdown.
RUNNER_LOOP = "TriggerRunner.arun"


#: Per event loop: the runner's main task, or None when it had ended (or never ran) at the first look. A shutdown
#: cancels every trigger at once; each must not scan all of the loop's tasks again.
_RUNNER: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.ref[asyncio.Task] | None] = (
    weakref.WeakKeyDictionary()
)


def triggerer_stopping() -> bool:
    """True once the triggerer's main loop has ended (or outside a triggerer): cancellations are then a shutdown's."""
    loop = asyncio.get_running_loop()
    if loop not in _RUNNER:
        runner = next(
            (task for task in asyncio.all_tasks(loop) if getattr(task.get_coro(), "__qualname__", "") == RUNNER_LOOP),
            None,
        )
        _RUNNER[loop] = None if runner is None else weakref.ref(runner)
    ref = _RUNNER[loop]
    runner = None if ref is None else ref()
    return runner is None or runner.done()


def timed_out(trigger: Any) -> bool:
    """Whether Airflow's own timeout for the trigger (``timeout_after``, set by the triggerer) has passed."""
    timeout_after = getattr(trigger, "timeout_after", None)
    if not isinstance(timeout_after, datetime.datetime):
        return False
    if timeout_after.tzinfo is None:
        timeout_after = timeout_after.replace(tzinfo=datetime.timezone.utc)
    return timeout_after < datetime.datetime.now(datetime.timezone.utc)


async def after_cancellation(trigger: Any) -> None:
    """Called by a trigger's ``run`` on ``asyncio.CancelledError`` (Airflow 3.1-3.2): run its ``on_kill`` unless the
    cancellation came from a shutdown or a timeout. ``on_kill`` finishes its work although Airflow re-sends the cancel
    every triggerer loop (about once a second) while it runs."""
    if triggerer_stopping() or timed_out(trigger):
        return
    trigger.log.info("Trigger cancelled while its task may have been killed (Airflow 3.1-3.2 call no on_kill)")
    await trigger.on_kill()
