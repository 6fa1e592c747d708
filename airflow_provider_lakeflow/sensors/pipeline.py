"""Wait on a pipeline update that something else started."""

from __future__ import annotations

import datetime
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
    :param max_age: freshness (a timedelta or seconds): succeed at once when the pipeline's latest COMPLETED update,
        started by anyone, ended within ``max_age``; otherwise wait for the next update to complete. Updates that
        fail meanwhile are not waited on and do not fail the sensor (its ``timeout`` bounds the wait).
    :param deferrable: wait in the triggerer (``poke_interval`` is the trigger's poll interval, ``timeout`` its
        absolute deadline); defaults to ``[operators] default_deferrable``.
    :param databricks_conn_id: the Airflow connection.

    A sensor never starts or stops an update. On success it pushes XCom ``update_id`` and ``state``; a failure
    raises ``LakeflowUpdateFailed`` (category, tables, fix) and pushes XCom ``failure``.
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
        max_age: float | datetime.timedelta | None = None,
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
        self.max_age = _max_age(max_age, update_id)
        self._ended: dict[str, int | None] = {}  # freshness: end times of the updates seen, per poke-mode instance
        if (pipeline_id is None) == (pipeline_name is None):
            _check_pipeline_ref(pipeline_id, pipeline_name)
        if not self.success_states:
            raise LakeflowInputError("success_states is empty. Fix: list at least one state, e.g. ('COMPLETED',).")
        both = sorted(set(self.success_states) & set(self.failure_states))
        if both:
            raise LakeflowInputError(
                f"States {both} are in both success_states and failure_states. Fix: list each in one."
            )

    def _target(self, hook: LakeflowHook, *, latest: bool = True) -> tuple[str | None, str | None]:
        """The pipeline and update to watch; (None, None) while no pipeline has the name yet."""
        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.workspace import operations

        try:
            pipeline_id = self.resolve_pipeline_id(hook)
        except operations.PipelineNotFound as exc:
            # Another DAG may be about to create it: wait (bounded by the sensor's timeout), say so once.
            if not getattr(self, "_said_missing", False):
                self.log.info("%s Waiting for it to appear.", exc)
                self._said_missing = True
            return None, None
        update_id = self.update_id or (hook.run(operations.latest_update_id(pipeline_id)) if latest else None)
        return pipeline_id, update_id

    def poke(self, context: Context) -> bool:
        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.operators.update_outcome import fail, read_failure

        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.workspace import operations
        from airflow_provider_lakeflow.workspace.waiting import verdict

        hook = self.hook
        if self.max_age is not None:
            return self._poke_fresh(context, hook)
        pipeline_id, update_id = self._target(hook)
        if pipeline_id is None:
            return False
        if update_id is None:
            self.log.info("Pipeline %s has no update yet", pipeline_id)
            return False
        update = hook.run(operations.get_update(pipeline_id, update_id))
        state = update.get("state")
        self.log.info("Update %s of pipeline %s: %s", update_id, pipeline_id, state)
        result = verdict(state, self.success_states, self.failure_states)
        if result == "failed":
            failure = read_failure(hook, pipeline_id, update_id, state, since_ms=update.get("creation_time"))
            fail(context, failure, self.log, soft_fail=self.soft_fail, retry=False)
        if result == "success":
            context["ti"].xcom_push(key="update_id", value=update_id)
            context["ti"].xcom_push(key="state", value=state)
        return result == "success"

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        if self.max_age is not None:
            return self._defer_fresh(context)
        # the trigger loads Airflow's trigger modules and our request engine (~90 ms), which DAG parsing never needs
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

    def _poke_fresh(self, context: Context, hook: LakeflowHook) -> bool:
        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.workspace.freshness import describe, fresh_update

        pipeline_id, _ = self._target(hook, latest=False)
        if pipeline_id is None:
            return False
        assert self.max_age is not None
        found = hook.run(fresh_update(pipeline_id, self.max_age, self._ended))
        if found is None:
            self.log.info(
                "Pipeline %s has no COMPLETED update that ended within %s s; waiting for the next one",
                pipeline_id,
                self.max_age,
            )
            return False
        self.log.info("%s: fresh", describe(pipeline_id, found))
        self._on_success(context, {"update_id": found.update_id, "state": "COMPLETED"})
        return True

    def _defer_fresh(self, context: Context) -> Any:
        # loads Airflow's trigger modules and our request engine (~90 ms): not at DAG parse
        from airflow_provider_lakeflow.triggers.freshness import LakeflowPipelineFreshnessTrigger

        pipeline_id, _ = self._target(self.hook, latest=False)
        if pipeline_id is None:
            return super().execute(context)  # no pipeline by that name yet: keep poking in the worker
        assert self.max_age is not None
        self._defer_to(
            LakeflowPipelineFreshnessTrigger(
                pipeline_id=pipeline_id,
                max_age=self.max_age,
                databricks_conn_id=self.databricks_conn_id,
                poll_interval=float(self.poke_interval),
                end_time=self._end_time(),
            )
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> None:
        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.operators.update_outcome import fail, read_failure

        if isinstance(event, dict) and event.get("status") == "failed" and event.get("update_id"):
            # The trigger's message has the raw errors; classify them from the event log, as the worker does.
            failure = read_failure(self.hook, event["pipeline_id"], event["update_id"], event.get("state"))
            fail(context, failure, self.log, soft_fail=self.soft_fail, retry=False)
        super().execute_complete(context, event)

    def _on_success(self, context: Context, event: dict[str, Any]) -> None:
        context["ti"].xcom_push(key="update_id", value=event["update_id"])
        context["ti"].xcom_push(key="state", value=event["state"])


def _max_age(value: Any, update_id: Any) -> float | None:
    if value is None:
        return None
    if update_id is not None:
        raise LakeflowInputError(
            "max_age checks the pipeline's latest COMPLETED update, so update_id makes no sense with it. "
            "Fix: drop update_id, or drop max_age."
        )
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise LakeflowInputError(f"max_age must be a positive timedelta or number of seconds, got {value!r}.")
    return float(value)
