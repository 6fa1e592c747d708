"""Wait on a pipeline update that something else started."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    conf,
)

from airflow_provider_lakeflow import DEFAULT_CONN_ID
from airflow_provider_lakeflow.errors import LakeflowInputError
from airflow_provider_lakeflow.operators._common import _check_pipeline_ref, _PipelineRefMixin
from airflow_provider_lakeflow.sensors.base import LakeflowSensor

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook


class LakeflowPipelineUpdateSensor(_PipelineRefMixin, LakeflowSensor):
    """Succeed when a pipeline update reaches a success state; fail on a failure state.

    :param pipeline_id: the pipeline's id (templated). Exactly one of ``pipeline_id`` / ``pipeline_name``.
    :param pipeline_name: the pipeline's exact name (templated). While no pipeline has the name, the sensor waits.
    :param update_id: the update to watch (templated). ``None`` watches the pipeline's latest update: re-read at every
        poke in poke and reschedule modes; in deferrable mode, the latest update when the sensor defers.
    :param success_states: states that end the wait successfully.
    :param failure_states: states that fail the task (with the event log's error messages); with ``soft_fail``
        the task is skipped instead.
    :param deferrable: wait in the triggerer (``poke_interval`` is the trigger's poll interval, ``timeout`` its
        absolute deadline); defaults to ``[operators] default_deferrable``.
    :param databricks_conn_id: the Airflow connection.

    A sensor never starts or stops an update. On success it pushes XCom ``update_id`` and ``state``.
    """

    template_fields: Sequence[str] = ("pipeline_id", "pipeline_name", "update_id")

    def __init__(
        self,
        *,
        pipeline_id: str | None = None,
        pipeline_name: str | None = None,
        update_id: str | None = None,
        success_states: Sequence[str] = ("COMPLETED",),
        failure_states: Sequence[str] = ("FAILED", "CANCELED"),
        deferrable: bool | None = None,
        databricks_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline_id = pipeline_id
        self.pipeline_name = pipeline_name
        self.update_id = update_id
        self.success_states = tuple(success_states)
        self.failure_states = tuple(failure_states)
        self.deferrable = (
            conf.getboolean("operators", "default_deferrable", fallback=False) if deferrable is None else deferrable
        )
        self.databricks_conn_id = databricks_conn_id
        if (pipeline_id is None) == (pipeline_name is None):
            _check_pipeline_ref(pipeline_id, pipeline_name)
        if not self.success_states:
            raise LakeflowInputError("success_states is empty. Fix: list at least one state, e.g. ('COMPLETED',).")
        both = sorted(set(self.success_states) & set(self.failure_states))
        if both:
            raise LakeflowInputError(
                f"States {both} are in both success_states and failure_states. Fix: list each in one."
            )

    def _target(self, hook: LakeflowHook) -> tuple[str | None, str | None]:
        """The pipeline and update to watch; (None, None) while no pipeline has the name yet."""
        from airflow_provider_lakeflow.hooks import operations as ops

        try:
            pipeline_id = self.resolve_pipeline_id(hook)
        except ops.PipelineNotFound as exc:
            # Another DAG may be about to create it: wait (bounded by the sensor's timeout), say so once.
            if not getattr(self, "_said_missing", False):
                self.log.info("%s Waiting for it to appear.", exc)
                self._said_missing = True
            return None, None
        update_id = self.update_id or hook.run(ops.latest_update_id(pipeline_id))
        return pipeline_id, update_id

    def poke(self, context: Context) -> bool:
        from airflow_provider_lakeflow.hooks import operations as ops
        from airflow_provider_lakeflow.hooks.waiting import describe_failure, verdict

        hook = self.hook
        pipeline_id, update_id = self._target(hook)
        if pipeline_id is None:
            return False
        if update_id is None:
            self.log.info("Pipeline %s has no update yet", pipeline_id)
            return False
        update = hook.run(ops.get_update(pipeline_id, update_id))
        state = update.get("state")
        self.log.info("Update %s of pipeline %s: %s", update_id, pipeline_id, state)
        result = verdict(state, self.success_states, self.failure_states)
        if result == "failed":
            errors = hook.run(ops.update_errors(pipeline_id, update_id, since_ms=update.get("creation_time")))
            url = ops.update_url(hook.host, pipeline_id, update_id)
            self._fail(describe_failure(pipeline_id, update_id, state, url, errors))
        if result == "success":
            context["ti"].xcom_push(key="update_id", value=update_id)
            context["ti"].xcom_push(key="state", value=state)
        return result == "success"

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        from airflow_provider_lakeflow.triggers.pipeline import LakeflowPipelineUpdateTrigger

        pipeline_id, update_id = self._target(self.hook)
        if pipeline_id is None or update_id is None:
            # Nothing to watch yet: a trigger needs an update id, so keep poking in the worker until one exists.
            return super().execute(context)
        self._defer_to(
            LakeflowPipelineUpdateTrigger(
                pipeline_id=pipeline_id,
                update_id=update_id,
                databricks_conn_id=self.databricks_conn_id,
                poll_interval=float(self.poke_interval),
                end_time=self._end_time(),
                success_states=self.success_states,
                failure_states=self.failure_states,
                cancel_on_kill=False,  # the sensor did not start this update; it must never stop it
            )
        )

    def _on_success(self, context: Context, event: dict[str, Any]) -> None:
        context["ti"].xcom_push(key="update_id", value=event["update_id"])
        context["ti"].xcom_push(key="state", value=event["state"])
