"""The deferrable wait for a pipeline update that completed recently enough (``LakeflowPipelineUpdateSensor``'s
``max_age``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook
from airflow_provider_lakeflow.triggers.base import LakeflowPollingTrigger
from airflow_provider_lakeflow.workspace.freshness import wait_for_fresh_update

if TYPE_CHECKING:
    from airflow_provider_lakeflow.workspace.messages import Operation
    from airflow_provider_lakeflow.workspace.waiting import UpdateOutcome


class LakeflowPipelineFreshnessTrigger(LakeflowPollingTrigger):
    """Poll until the pipeline's latest COMPLETED update (started by anyone) ended within ``max_age`` seconds.

    :param pipeline_id: the pipeline.
    :param max_age: seconds.
    :param databricks_conn_id: the Airflow connection.
    :param poll_interval: seconds between polls (one ``list_updates`` request each).
    :param end_time: absolute deadline in epoch seconds, or None.

    Yields one event ``{"status", "pipeline_id", "update_id", "state", "message"}`` like
    ``LakeflowPipelineUpdateTrigger``; ``update_id`` is the fresh update's.
    """

    def __init__(
        self,
        pipeline_id: str,
        max_age: float,
        databricks_conn_id: str = LakeflowHook.default_conn_name,
        poll_interval: float = 60,
        end_time: float | None = None,
    ) -> None:
        super().__init__()
        self.pipeline_id = pipeline_id
        self.max_age = max_age
        self.databricks_conn_id = databricks_conn_id
        self.poll_interval = poll_interval
        self.end_time = end_time

    def identity(self, outcome: Any = None) -> dict[str, Any]:
        return {"pipeline_id": self.pipeline_id, "update_id": (outcome.update_id or None) if outcome else None}

    def wait(self, host: str) -> Operation[UpdateOutcome]:
        return wait_for_fresh_update(
            self.pipeline_id,
            max_age=self.max_age,
            poll_interval=self.poll_interval,
            end_time=self.end_time,
            log=self.log,
        )
