"""What every Lakeflow trigger shares: the hook's async path, one event with a typed status, errors as events."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_lakeflow.airflow_versions import KILL_BY_CANCELLATION
from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook
from airflow_provider_lakeflow.triggers.cancelled_wait import after_cancellation
from airflow_provider_lakeflow.triggers.user_kill import killed_by_user, outlive_cancellation
from airflow_provider_lakeflow.workspace.messages import Operation


class LakeflowPollingTrigger(BaseTrigger):
    """Run one wait operation on the event loop and yield exactly one event.

    Subclasses give ``identity(outcome)`` (the fields every event carries, e.g. ``pipeline_id``; ``outcome`` is None
    for an error) and ``wait(host)`` (an operation from :mod:`airflow_provider_lakeflow.workspace.waiting` whose result
    has the event's ``status``, ``state`` and ``message``). A non-transient error becomes an ``"error"`` event rather
    than a crashed trigger.

    Everything a sleeping wait keeps is walked by every full collection of a triggerer shared with other providers,
    so the wait is one polling generator over one record (``hooks/waiting.py``), and the trigger's logger is its
    class's, not one per wait.
    """

    databricks_conn_id: str

    @property
    def log(self) -> Any:
        """The trigger class's logger (``LoggingMixin.logger()``): the same logger name, not one proxy per wait."""
        return type(self).logger()

    def identity(self, outcome: Any = None) -> dict[str, Any]:
        raise NotImplementedError

    def wait(self, host: str) -> Operation[Any]:
        raise NotImplementedError

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and the constructor's arguments, read back from the attributes of the same names (a
        subclass keeps each argument under its own name); tuples are stored as lists, as JSON has them."""
        kwargs = {}
        for name in _constructor_arguments(type(self)):
            value = getattr(self, name)
            kwargs[name] = list(value) if isinstance(value, tuple) else value
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    def _hook(self) -> LakeflowHook:
        return LakeflowHook(databricks_conn_id=self.databricks_conn_id)

    def stops_on_kill(self) -> bool:
        """Whether a user's kill of the deferred task stops remote work (:meth:`stop_remote_work`)."""
        return False

    async def stop_remote_work(self) -> None:
        """Stop what the wait watches; called only after a user's kill (see :meth:`on_kill`)."""

    async def on_kill(self) -> None:
        """Airflow 3.3 (and 3.1-3.2 through :meth:`run`): stop the remote work when a user killed the task, never when
        the trigger was reassigned.

        Airflow 3.3.2 also calls ``on_kill`` on a triggerer that lost a trigger to another triggerer (it missed
        heartbeats past the health-check threshold and came back); :mod:`~airflow_provider_lakeflow.triggers.user_kill`
        tells the two apart. Subclasses override :meth:`stops_on_kill` and :meth:`stop_remote_work`, not this.
        """
        if not self.stops_on_kill():
            return

        async def stop_if_killed_by_user() -> None:
            if await killed_by_user(self):
                await self.stop_remote_work()

        await outlive_cancellation(stop_if_killed_by_user(), self.log)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook()
        try:
            async with hook.session_scope():
                try:
                    config = await hook.aconfig()
                    outcome = await hook.arun(self.wait(config.host))
                except Exception as exc:
                    event = {
                        "status": "error",
                        **self.identity(),
                        "state": None,
                        "message": f"{type(exc).__name__}: {exc}",
                    }
                else:
                    event = {
                        "status": outcome.status,
                        **self.identity(outcome),
                        "state": outcome.state,
                        "message": outcome.message,
                    }
        except asyncio.CancelledError:
            # Airflow 3.1-3.2 cancel a killed task's trigger but call no on_kill: handle the kill here.
            if KILL_BY_CANCELLATION and self.stops_on_kill():
                await after_cancellation(self)
            raise
        yield TriggerEvent(event)


@functools.cache
def _constructor_arguments(cls: type) -> tuple[str, ...]:
    parameters = inspect.signature(cls).parameters.values()
    return tuple(p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
