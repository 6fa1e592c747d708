"""A deferred task whose trigger is not from this provider: its ``on_kill`` only reads the task's state, as ours does.

The control of ``benchmarks/kill_latency.py``: whatever the first read costs the triggerer here is Airflow's. The
trigger never fires; its ``on_kill`` asks the triggerer's supervisor for the task's state (``GetTaskStates``, the Task
SDK's channel, awaited) and appends the moments it started and got the answer to the file named in the run's conf.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pendulum
from airflow import DAG
from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

#: The read outlives Airflow's repeated cancels of ``on_kill`` (a strong reference, so it is not collected).
_READS: set[asyncio.Task] = set()


class BareStateReadTrigger(BaseTrigger):
    def __init__(self, probe_path: str) -> None:
        super().__init__()
        self.probe_path = probe_path

    def serialize(self) -> tuple[str, dict[str, Any]]:
        # The DAG processor imports this file under a mangled name; the triggerer imports it from PYTHONPATH.
        return "bare_state_read.BareStateReadTrigger", {"probe_path": self.probe_path}

    async def run(self):
        await asyncio.Event().wait()
        yield TriggerEvent({})

    async def on_kill(self) -> None:
        read = asyncio.ensure_future(self._read_state())
        _READS.add(read)
        read.add_done_callback(_READS.discard)
        await asyncio.shield(read)

    async def _read_state(self) -> None:
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.comms import GetTaskStates

        ti = self.task_instance
        assert ti is not None, "the triggerer sets it before running the trigger"
        started = time.time()
        response = await task_runner.SUPERVISOR_COMMS.asend(
            GetTaskStates(dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id])
        )
        answered = time.time()
        self.log.info("bare on_kill: state read took %.2f s: %s", answered - started, response)
        with open(self.probe_path, "a") as probe:
            probe.write(json.dumps({"run_id": ti.run_id, "started": started, "answered": answered}) + "\n")


class BareDeferOperator(BaseOperator):
    template_fields = ("probe_path",)

    def __init__(self, probe_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.probe_path = probe_path

    def execute(self, context: Any) -> None:
        self.defer(trigger=BareStateReadTrigger(self.probe_path), method_name="resume")

    def resume(self, context: Any, event: Any = None) -> None:
        return None


with DAG(
    dag_id="bare_state_read",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=100,
):
    BareDeferOperator(task_id="wait", probe_path="{{ dag_run.conf['probe_path'] }}")
