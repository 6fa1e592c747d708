"""The deferrable wait on a pipeline update."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook
from airflow_provider_lakeflow.triggers.base import LakeflowPollingTrigger
from airflow_provider_lakeflow.workspace import operations
from airflow_provider_lakeflow.workspace.waiting import wait_for_update

if TYPE_CHECKING:
    from airflow_provider_lakeflow.workspace.messages import Operation
    from airflow_provider_lakeflow.workspace.waiting import UpdateOutcome


class LakeflowPipelineUpdateTrigger(LakeflowPollingTrigger):
    """Poll one pipeline update until it succeeds, fails, or ``end_time`` passes.

    :param pipeline_id: the pipeline.
    :param update_id: the update to wait for.
    :param databricks_conn_id: the Airflow connection (loaded with ``aget_connection`` on Airflow 3).
    :param poll_interval: seconds between polls (one ``get_update`` request each).
    :param end_time: absolute deadline in epoch seconds, or None; serialized as is, so a triggerer restart keeps it.
    :param success_states: states that yield a "success" event.
    :param failure_states: states that yield a "failed" event, whose message carries the event log's errors.
    :param cancel_on_kill: on Airflow 3.1 and later, stop the update when a user kills the deferred task (3.3:
        ``on_kill``; 3.1-3.2: the trigger's cancellation); never when the wait moved to another triggerer (the task is
        still deferred), the triggerer shuts down, or the task's state cannot be read.
    :param progress_interval: read per-table progress from the event log at most this often while RUNNING; None: never.

    Yields one event ``{"status": "success" | "failed" | "timeout" | "error", "pipeline_id", "update_id", "state",
    "message"}``. All triggers in a process share one aiohttp session and one credential cache; transient faults
    are retried inside the trigger, and the trigger never stops the update on its own deadline (the operator does).
    """

    def __init__(
        self,
        pipeline_id: str,
        update_id: str,
        databricks_conn_id: str = LakeflowHook.default_conn_name,
        poll_interval: float = 30,
        end_time: float | None = None,
        success_states: Sequence[str] = ("COMPLETED",),
        failure_states: Sequence[str] = ("FAILED", "CANCELED"),
        cancel_on_kill: bool = True,
        progress_interval: float | None = None,
    ) -> None:
        super().__init__()
        self.pipeline_id = pipeline_id
        self.update_id = update_id
        self.databricks_conn_id = databricks_conn_id
        self.poll_interval = poll_interval
        self.end_time = end_time
        # tuples of strings: the collector stops tracking them, and every sleeping wait keeps its trigger
        self.success_states = tuple(success_states)
        self.failure_states = tuple(failure_states)
        self.cancel_on_kill = cancel_on_kill
        self.progress_interval = progress_interval

    def identity(self, outcome: Any = None) -> dict[str, Any]:
        return {"pipeline_id": self.pipeline_id, "update_id": self.update_id}

    def wait(self, host: str) -> Operation[UpdateOutcome]:
        return wait_for_update(
            self.pipeline_id,
            self.update_id,
            host=host,
            poll_interval=self.poll_interval,
            end_time=self.end_time,
            success_states=self.success_states,
            failure_states=self.failure_states,
            log=self.log,
            progress_interval=self.progress_interval,
        )

    def stops_on_kill(self) -> bool:
        return self.cancel_on_kill

    async def stop_remote_work(self) -> None:
        """A user killed the deferred task: stop the update, unless it has already ended.

        The stop applies to the pipeline's active update; an update that already ended (its event may have been
        delivered by another triggerer) must not turn into a stop of the pipeline's next update.
        """
        hook = self._hook()
        async with hook.session_scope():
            update = await hook.arun(operations.get_update(self.pipeline_id, self.update_id))
            state = update.get("state")
            if state in operations.TERMINAL_UPDATE_STATES:
                self.log.info(
                    "Update %s of pipeline %s already ended (%s); nothing to stop",
                    self.update_id,
                    self.pipeline_id,
                    state,
                )
                return
            self.log.info(
                "Stopping pipeline %s (update %s) because the task was killed", self.pipeline_id, self.update_id
            )
            await hook.arun(operations.stop_pipeline(self.pipeline_id))
