"""What a trigger's ``on_kill`` needs on Airflow 3.3: tell a user's kill of the deferred task from Airflow moving the
trigger to another triggerer, and finish its work although Airflow cancels it again.

Airflow 3.3.2 calls a trigger's ``on_kill`` on both: when a user marks the deferred task failed or success, clears it
or deletes its run, and when the trigger was reassigned to another triggerer because its triggerer missed heartbeats
for longer than ``[triggerer] triggerer_health_check_threshold`` (a long GC pause, a frozen VM, a slow metadata
database) and then came back: that triggerer cancels its old copy through the user-kill path. Only the first must stop
remote work; after a reassignment another triggerer is still waiting on it.

The discriminator: a user's kill changes the task instance's state (or deletes it), a reassignment leaves it DEFERRED.
The trigger reads that state through the Task SDK's channel to the triggerer's supervisor (which asks the execution
API), awaited on the event loop, which never blocks. A triggerer's first such read is slow, and holds the triggerer's
supervisor (not its event loop) for as long: Airflow sets up the in-process execution API then (docs/deferrable.md,
"A user's kill"). When the state cannot be read, nothing is stopped: stopping work that another triggerer still
watches fails a task that would have succeeded, whereas not stopping after a real kill only lets an update run to its
end; the log says so, and the user can stop it by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

#: Bounds the state read. Generous: a triggerer's first read through its supervisor took 20 to 69 s on a loaded
#: two-core machine (Airflow builds its in-process execution API and, on that API's first request, cadwyn generates
#: the routes of every API version; docs/deferrable.md), and the work runs past Airflow's own ``on_kill`` timeout
#: anyway. Running out only means "unknown", so nothing is stopped: the bound must sit well above the slowest real
#: read, whereas a late answer costs nothing (an update that ended meanwhile is not stopped).
STATE_READ_TIMEOUT = 300.0

DEFERRED = "deferred"

#: Kill handling still running after Airflow gave up waiting for it (a strong reference, so it is not collected).
_RUNNING: set[asyncio.Task] = set()


async def _read_task_state(ti: Any) -> tuple[bool, str | None]:
    """(exists, state) of the trigger's task instance, as the execution API sees it now."""
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import GetTaskStates, TaskStatesResult

    map_index = getattr(ti, "map_index", -1)
    map_index = -1 if map_index is None else map_index
    # The Task SDK's own async reads (aget_connection, XCom) go the same way: a request to the supervisor, awaited.
    response = await task_runner.SUPERVISOR_COMMS.asend(
        GetTaskStates(dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id], map_index=map_index)
    )
    if not isinstance(response, TaskStatesResult):
        raise TypeError(f"the supervisor answered {type(response).__name__}, not TaskStatesResult")
    # The execution API keys a mapped task instance as "<task_id>_<map_index>".
    key = ti.task_id if map_index < 0 else f"{ti.task_id}_{map_index}"
    run_states = response.task_states.get(ti.run_id) or {}
    if key not in run_states:
        return False, None
    state = run_states[key]
    return True, None if state is None else str(getattr(state, "value", state))


async def killed_by_user(trigger: Any) -> bool:
    """True when the task was killed (it left DEFERRED); False when the trigger was reassigned or the answer is unknown.

    :param trigger: a running trigger (Airflow sets its ``task_instance`` before running it). The decision is logged
        to its log, which Airflow shows next to the task's.
    """
    log = trigger.log
    ti = getattr(trigger, "task_instance", None)
    if ti is None:
        log.warning(
            "on_kill: this trigger has no task instance, so a user's kill cannot be told from a move to another "
            "triggerer; not stopping the remote work"
        )
        return False
    try:
        exists, state = await asyncio.wait_for(_read_task_state(ti), STATE_READ_TIMEOUT)
    except Exception as exc:  # any failure to read (timeout, comms, Airflow 2 without the Task SDK) means "unknown"
        log.warning(
            "on_kill: could not read the state of task %s.%s (run %s): %s: %s. Not stopping the remote work: if "
            "the trigger only moved to another triggerer, that triggerer is still waiting on it. If a user killed "
            "the task, stop it by hand.",
            ti.dag_id,
            ti.task_id,
            ti.run_id,
            type(exc).__name__,
            exc,
        )
        return False
    if exists and state == DEFERRED:
        log.info(
            "on_kill: task %s.%s (run %s) is still deferred, so this trigger was moved to another triggerer, which "
            "keeps waiting; not stopping the remote work",
            ti.dag_id,
            ti.task_id,
            ti.run_id,
        )
        return False
    log.info(
        "on_kill: task %s.%s (run %s) is %s, no longer deferred: the task was killed",
        ti.dag_id,
        ti.task_id,
        ti.run_id,
        state if exists else "gone (its run was deleted)",
    )
    return True


async def outlive_cancellation(work: Awaitable[None], log: Any) -> None:
    """Run ``on_kill``'s work to its end even when Airflow cancels ``on_kill`` itself.

    Airflow 3.3.2 re-sends the cancel of a trigger on every triggerer loop (about once a second) for as long as the
    trigger has not finished, and its ``on_kill`` is still running then; the second cancel interrupts ``on_kill``
    wherever it awaits (here: the state read through the supervisor, or the stop request). The work therefore runs as
    its own task on the triggerer's loop: ``on_kill`` waits for it while Airflow lets it, and the task finishes (it is
    bounded by the state read's timeout and the hook's request timeouts) when Airflow does not. Its errors are
    logged, since nobody may be left to receive them.
    """

    async def logged() -> None:
        try:
            await work
        except Exception as exc:
            log.error("on_kill failed: %s: %s", type(exc).__name__, exc)

    task = asyncio.ensure_future(logged())
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    await asyncio.shield(task)
