"""Operators for Lakeflow Connect pipelines: stop an update, delete a pipeline.

Creating a pipeline and running an update live in ``create_pipeline`` and ``run_pipeline``; this path imports them too.

Importing this module (DAG parsing) loads no databricks-sdk and no aiohttp: those load when a task runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    BaseOperator,
)

from airflow_provider_lakeflow import DEFAULT_CONN_ID
from airflow_provider_lakeflow.operators._common import (
    _check_pipeline_ref,
    _PipelineRefMixin,
    _seconds,
    wait_in_worker,
)
from airflow_provider_lakeflow.operators.create_pipeline import LakeflowCreateIngestionPipelineOperator
from airflow_provider_lakeflow.operators.run_pipeline import ON_ACTIVE_UPDATE_POLICIES, LakeflowRunPipelineOperator

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

__all__ = [
    "ON_ACTIVE_UPDATE_POLICIES",
    "LakeflowCreateIngestionPipelineOperator",
    "LakeflowDeletePipelineOperator",
    "LakeflowRunPipelineOperator",
    "LakeflowStopPipelineOperator",
]


class LakeflowStopPipelineOperator(_PipelineRefMixin, BaseOperator):
    """Stop a pipeline's active update (a no-op when there is none).

    :param pipeline_id: the pipeline's id (templated). Exactly one of ``pipeline_id`` / ``pipeline_name``.
    :param pipeline_name: the pipeline's exact name (templated).
    :param wait_for_idle: wait until the stopped update reaches a terminal state (CANCELED, usually).
    :param poll_interval: seconds between polls while waiting.
    :param databricks_conn_id: the Airflow connection.

    Returns the id of the update it stopped, or None.
    """

    template_fields: Sequence[str] = ("pipeline_id", "pipeline_name")

    def __init__(
        self,
        *,
        pipeline_id: str | None = None,
        pipeline_name: str | None = None,
        wait_for_idle: bool = True,
        poll_interval: float = 5,
        databricks_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline_id = pipeline_id
        self.pipeline_name = pipeline_name
        self.wait_for_idle = wait_for_idle
        self.poll_interval = poll_interval
        self.databricks_conn_id = databricks_conn_id
        if (pipeline_id is None) == (pipeline_name is None):
            _check_pipeline_ref(pipeline_id, pipeline_name)
        _seconds("poll_interval", poll_interval, allow_none=False)

    def execute(self, context: Context) -> str | None:
        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.workspace import operations

        hook = self.hook
        pipeline_id = self.resolve_pipeline_id(hook)
        active = operations.active_update(hook.run(operations.get_pipeline(pipeline_id)))
        if active is None:
            self.log.info("Pipeline %s has no active update; nothing to stop", pipeline_id)
            return None
        hook.run(operations.stop_pipeline(pipeline_id))
        self.log.info("Stop requested for update %s of pipeline %s", active["update_id"], pipeline_id)
        if self.wait_for_idle:
            end_time = None if self.execution_timeout is None else time.time() + self.execution_timeout.total_seconds()
            outcome = wait_in_worker(
                self,
                hook,
                pipeline_id,
                active["update_id"],
                end_time=end_time,
                success_states=operations.TERMINAL_UPDATE_STATES,
            )
            self.log.info("Update %s is %s", active["update_id"], outcome.state)
        return active["update_id"]


class LakeflowDeletePipelineOperator(_PipelineRefMixin, BaseOperator):
    """Delete a pipeline (its tables are kept or dropped as the workspace's cascade rule says).

    :param pipeline_id: the pipeline's id (templated). Exactly one of ``pipeline_id`` / ``pipeline_name``.
    :param pipeline_name: the pipeline's exact name (templated).
    :param missing_ok: succeed when the pipeline does not exist (default), instead of failing.
    :param databricks_conn_id: the Airflow connection.

    Returns the deleted pipeline's id, or None when there was none.
    """

    template_fields: Sequence[str] = ("pipeline_id", "pipeline_name")

    def __init__(
        self,
        *,
        pipeline_id: str | None = None,
        pipeline_name: str | None = None,
        missing_ok: bool = True,
        databricks_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline_id = pipeline_id
        self.pipeline_name = pipeline_name
        self.missing_ok = missing_ok
        self.databricks_conn_id = databricks_conn_id
        if (pipeline_id is None) == (pipeline_name is None):
            _check_pipeline_ref(pipeline_id, pipeline_name)

    def execute(self, context: Context) -> str | None:
        from databricks.sdk.errors import NotFound

        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.workspace import operations

        hook = self.hook
        try:
            pipeline_id = self.resolve_pipeline_id(hook)
            hook.run(operations.delete_pipeline(pipeline_id))
        except (NotFound, operations.PipelineNotFound) as exc:
            if not self.missing_ok:
                raise AirflowFailException(f"Cannot delete: {exc}") from exc
            self.log.info("Pipeline %s does not exist; nothing to delete", self.pipeline_id or self.pipeline_name)
            return None
        self.log.info("Deleted pipeline %s", pipeline_id)
        return pipeline_id
