"""What the installed Airflow can do for this provider's deferred waits and watchers, and the one log line that says
what it cannot.

The package supports Airflow 2.11, 3.1, 3.2 and 3.3 (docs/airflow-versions.md has the table). What differs:

- A user's kill of a deferred run task stops its update (``cancel_on_kill=True``): on 3.3 the triggerer calls the
  trigger's ``on_kill``; on 3.1 and 3.2 it only cancels the trigger, which handles its own cancellation the same way
  (:mod:`airflow_provider_lakeflow.triggers.cancelled_wait`); on 2.11 the triggerer also only cancels it, but a
  trigger there cannot read its task's state (no Task SDK; only a metadata DB query), so it cannot tell a kill from a
  move to another triggerer, and the update runs on.
- Watchers share one poll and keep their cursor in the metadata DB only on 3.3 (shared trigger streams, asset state
  store); before, each polls on its own and keeps its cursor in memory.
"""

from __future__ import annotations

from airflow import __version__ as AIRFLOW_VERSION
from packaging.version import Version

AIRFLOW_MINOR = Version(AIRFLOW_VERSION).release[:2]

#: Event-driven scheduling: ``AssetWatcher`` and ``BaseEventTrigger`` (Airflow 3).
EVENT_SCHEDULING = AIRFLOW_MINOR >= (3, 0)

#: The triggerer calls ``BaseTrigger.on_kill`` when a user kills a deferred task (and when a trigger moved to
#: another triggerer, which :mod:`~airflow_provider_lakeflow.triggers.user_kill` tells apart).
TRIGGERER_CALLS_ON_KILL = AIRFLOW_MINOR >= (3, 3)

#: The triggerer cancels a killed task's trigger without calling ``on_kill``, and a trigger can read its task's state
#: through the Task SDK (``SUPERVISOR_COMMS.asend(GetTaskStates)``): the trigger acts on its own cancellation.
KILL_BY_CANCELLATION = (3, 1) <= AIRFLOW_MINOR < (3, 3)

#: Whether ``cancel_on_kill=True`` stops an update when a user kills the deferred task.
KILL_STOPS_DEFERRED_UPDATE = TRIGGERER_CALLS_ON_KILL or KILL_BY_CANCELLATION

#: Watchers of one pipeline share one poll (the triggerer's shared streams, ``airflow.triggers.shared_stream``).
WATCHERS_SHARE_POLLS = AIRFLOW_MINOR >= (3, 3)

#: A watcher's cursor lives in its asset's state store, in the metadata DB, and survives restarts and failovers.
WATCHER_CURSOR_DURABLE = AIRFLOW_MINOR >= (3, 3)


def kill_note(pipeline_id: str, update_id: str) -> str | None:
    """What a deferred run task with ``cancel_on_kill=True`` says once, when it defers, on an Airflow whose kill
    cannot stop the update; None where it can."""
    if KILL_STOPS_DEFERRED_UPDATE:
        return None
    if AIRFLOW_MINOR < (3, 0):
        why = "its triggerer calls no on_kill, and a trigger cannot read its task's state to tell a kill from a move"
    else:
        why = "its triggerer calls no on_kill and its Task SDK cannot read the task's state from a trigger"
    return (
        f"Airflow {AIRFLOW_VERSION}: killing this deferred task will not stop update {update_id} of pipeline "
        f"{pipeline_id} ({why}); after a kill, stop it with LakeflowStopPipelineOperator or in the workspace. "
        "Airflow 3.1 and later stop it (cancel_on_kill=True)."
    )


def watcher_note(what: str) -> str | None:
    """What a watcher says once, when it starts polling on its own, about what this Airflow cannot give it; None
    when it lacks nothing."""
    lacks = []
    if not WATCHERS_SHARE_POLLS:
        lacks.append("polls on its own (no shared trigger streams)")
    if not WATCHER_CURSOR_DURABLE:
        lacks.append(
            "keeps its cursor in memory (no asset state store): after a triggerer restart or failover, updates that "
            "ended while it was not running do not fire"
        )
    if not lacks:
        return None
    return (
        f"Airflow {AIRFLOW_VERSION}: watcher {what} {' and '.join(lacks)}. Airflow 3.3 shares one poll per pipeline "
        "and keeps the cursor in the metadata DB."
    )
