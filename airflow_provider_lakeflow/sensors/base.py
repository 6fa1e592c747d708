"""What the Lakeflow sensors share: failing (or skipping with ``soft_fail``), deferring with an absolute deadline,
and turning the trigger's typed event into the task's outcome."""

from __future__ import annotations

import datetime
import time
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException, BaseSensorOperator

from airflow_provider_lakeflow.operators._common import check_event

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context
    from airflow.triggers.base import BaseTrigger


class LakeflowSensor(BaseSensorOperator):
    """Base of the Lakeflow sensors; subclasses build their trigger and say what success pushes."""

    def _fail(self, message: str) -> None:
        if self.soft_fail:
            raise AirflowSkipException(message)
        raise AirflowFailException(message)

    def _end_time(self) -> float | None:
        """The trigger's absolute deadline: the sensor's ``timeout`` from now."""
        return time.time() + float(self.timeout) if self.timeout else None

    def _defer_to(self, trigger: BaseTrigger) -> None:
        # Airflow's own trigger timeout only backs ours up, so the event (with its message) decides the outcome.
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=None if not self.timeout else datetime.timedelta(seconds=float(self.timeout) + 60),
        )

    def _on_success(self, context: Context, event: dict[str, Any]) -> None:
        raise NotImplementedError

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> None:
        event = check_event(event, type(self).__name__.replace("Sensor", "Trigger"))
        status = event["status"]
        if status == "success":
            self._on_success(context, event)
            return
        if status == "timeout":
            message = f"Sensor timed out: {event['message']}"
            if self.soft_fail:
                raise AirflowSkipException(message)
            from airflow.providers.common.compat.sdk import AirflowSensorTimeout

            raise AirflowSensorTimeout(message)
        self._fail(event["message"])
