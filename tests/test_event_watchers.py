"""Event-driven scheduling without Airflow processes: the shared poll and the per-watcher cursor over the emulator
(real HTTP, real databricks-sdk), the triggers' own poll loop, shared streams in process, bad arguments, Airflow 2.

What needs a real scheduler and triggerer (DAG runs from watcher events, restarts) is in test_event_driven.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time

import pytest

from airflow_provider_lakeflow.errors import LakeflowInputError
from airflow_provider_lakeflow.triggers.events import EVENT_SCHEDULING

airflow3 = pytest.mark.skipif(not EVENT_SCHEDULING, reason="event-driven scheduling needs Airflow 3")
QUICK = {"QUEUED": 0.05, "WAITING_FOR_RESOURCES": 0.05, "INITIALIZING": 0.05, "SETTING_UP_TABLES": 0.05}


def _spec(name: str, tables=("account", "contact")) -> dict:
    objects = [
        {
            "table": {
                "source_schema": "objects",
                "source_table": t,
                "destination_catalog": "main",
                "destination_schema": "sales",
            }
        }
        for t in tables
    ]
    return {"name": name, "ingestion_definition": {"connection_name": "sf", "objects": objects}}


@pytest.fixture
def hook(lakeflow_emulator):
    from airflow_provider_lakeflow.hooks import LakeflowHook

    return LakeflowHook()


def _pipeline(hook, emulator, name="sales", running=1.0, **script) -> str:
    from airflow_provider_lakeflow.workspace import operations

    pipeline_id = hook.run(operations.create_pipeline(_spec(name)))
    emulator.script_pipeline(name, phase_seconds={**QUICK, "RUNNING": running}, **script)
    return pipeline_id


def _wait_state(emulator, pipeline_id, update_id, terminal=True, timeout=20.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = emulator.update(pipeline_id, update_id)["state"]
        if (state in ("COMPLETED", "FAILED", "CANCELED")) == terminal:
            return
        time.sleep(0.05)
    raise AssertionError(f"update {update_id} still {state}")


def _watch(hook, emulator, read_running, **ref):
    from airflow_provider_lakeflow.workspace.watching import PipelineWatch

    return PipelineWatch(host=emulator.url, read_running=read_running, **ref)


@airflow3
def test_each_update_fires_once_and_history_never(hook, lakeflow_emulator):
    from airflow_provider_lakeflow.workspace.watching import Cursor, update_events_due

    emulator = lakeflow_emulator
    pipeline_id = _pipeline(hook, emulator, running=0.5)
    history = emulator.start_update_externally(pipeline_id)
    _wait_state(emulator, pipeline_id, history)
    watch = _watch(hook, emulator, False, pipeline_id=pipeline_id, pipeline_name=None)

    fired: list[dict] = []
    cursor = None
    wanted: frozenset = frozenset()

    def poll() -> None:
        nonlocal cursor, wanted
        due = update_events_due(cursor, hook.run(watch.poll(wanted)), ("COMPLETED",))
        fired.extend(due.events)
        cursor, wanted = due.cursor, due.wanted

    poll()
    assert fired == []  # the update that ended before the watcher started is history
    first = emulator.start_update_externally(pipeline_id, cause="JOB_TASK")
    poll()
    _wait_state(emulator, pipeline_id, first)
    for _ in range(3):
        poll()
    assert [(e["update_id"], e["state"], e["cause"]) for e in fired] == [(first, "COMPLETED", "JOB_TASK")]
    assert set(fired[0]["table_metrics"]) == {"main.sales.account", "main.sales.contact"}
    assert fired[0]["update_url"].endswith(f"/#joblist/pipelines/{pipeline_id}/updates/{first}")

    # The triggerer goes away; an update runs and ends meanwhile; a new watcher starts from the stored cursor.
    stored = json.loads(json.dumps(cursor.to_json()))
    meanwhile = emulator.start_update_externally(pipeline_id)
    _wait_state(emulator, pipeline_id, meanwhile)
    watch = _watch(hook, emulator, False, pipeline_id=pipeline_id, pipeline_name=None)
    cursor, wanted = Cursor.from_json(stored), frozenset()
    for _ in range(3):
        poll()
    assert [e["update_id"] for e in fired] == [first, meanwhile]
    assert len(cursor.done) <= 2  # the cursor stays small: a floor and the handled updates above it


@airflow3
def test_a_table_fires_when_its_flow_completes_not_when_the_update_ends(hook, lakeflow_emulator):
    from airflow_provider_lakeflow.workspace.watching import table_events_due

    emulator = lakeflow_emulator
    pipeline_id = _pipeline(hook, emulator, running=3.0, table_seconds={"account": 0.2})
    watch = _watch(hook, emulator, True, pipeline_id=None, pipeline_name="sales")
    cursors: dict[str, object] = {"main.sales.account": None, "Main.Sales.`Contact`": None}
    fired: dict[str, list[tuple[dict, str]]] = {t: [] for t in cursors}

    def poll():
        snapshot = hook.run(watch.poll())
        for table in cursors:
            due = table_events_due(cursors[table], snapshot, table)
            cursors[table] = due.cursor
            states = {u["update_id"]: u["state"] for u in snapshot.updates}
            fired[table].extend((e, states[e["update_id"]]) for e in due.events)

    poll()
    update_id = emulator.start_update_externally(pipeline_id)
    deadline = time.time() + 10
    while not fired["main.sales.account"] and time.time() < deadline:
        time.sleep(0.2)
        poll()
    (event, state_then), *more = fired["main.sales.account"]
    assert not more and state_then == "RUNNING" and not fired["Main.Sales.`Contact`"]
    assert event["table"] == "main.sales.account" and event["update_id"] == update_id
    assert event["num_output_rows"] > 0 and event["num_deleted_rows"] == 0
    _wait_state(emulator, pipeline_id, update_id)
    poll()
    poll()
    assert [e["update_id"] for e, _ in fired["Main.Sales.`Contact`"]] == [update_id]
    assert len(fired["main.sales.account"]) == 1


@airflow3
def test_a_failed_update_fires_the_tables_that_landed_and_no_others(hook, lakeflow_emulator):
    from airflow_provider_lakeflow.workspace.watching import table_events_due, update_events_due

    emulator = lakeflow_emulator
    pipeline_id = _pipeline(hook, emulator, running=1.0, table_seconds={"account": 0.1}, outcome="FAILED")
    watch = _watch(hook, emulator, True, pipeline_id=pipeline_id, pipeline_name=None)
    tables = {"main.sales.account": None, "main.sales.contact": None}
    fired: dict[str, list[str]] = {t: [] for t in tables}
    update_cursor, updates_fired = None, []
    snapshot = hook.run(watch.poll())
    update_id = emulator.start_update_externally(pipeline_id)
    for _ in range(12):
        snapshot = hook.run(watch.poll())
        for table in tables:
            due = table_events_due(tables[table], snapshot, table)
            tables[table] = due.cursor
            fired[table] += [e["update_id"] for e in due.events]
        due = update_events_due(update_cursor, snapshot, ("COMPLETED",))
        update_cursor, updates_fired = due.cursor, updates_fired + due.events
        time.sleep(0.2)
    assert emulator.update(pipeline_id, update_id)["state"] == "FAILED"
    assert fired == {"main.sales.account": [update_id], "main.sales.contact": []}
    assert updates_fired == []  # states=("COMPLETED",): a FAILED update does not fire
    assert update_id in tables["main.sales.contact"].done  # handled: its flow FAILED, nothing left to wait for


@airflow3
def test_a_missing_pipeline_never_fires_and_one_created_later_does(hook, lakeflow_emulator):
    from airflow_provider_lakeflow.workspace import operations
    from airflow_provider_lakeflow.workspace.watching import update_events_due

    emulator = lakeflow_emulator
    watch = _watch(hook, emulator, False, pipeline_id=None, pipeline_name="later")
    snapshot = hook.run(watch.poll())
    assert snapshot.pipeline_id is None and "No pipeline is named 'later'" in snapshot.problem
    due = update_events_due(None, snapshot, ("COMPLETED",))
    assert due.events == [] and due.cursor.pipeline_id is None
    cursor = due.cursor
    pipeline_id = _pipeline(hook, emulator, name="later", running=0.2)
    update_id = emulator.start_update_externally(pipeline_id)
    _wait_state(emulator, pipeline_id, update_id)
    events, wanted = [], frozenset()
    for _ in range(2):
        due = update_events_due(cursor, hook.run(watch.poll(wanted)), ("COMPLETED",))
        cursor, wanted, events = due.cursor, due.wanted, events + due.events
    assert [e["update_id"] for e in events] == [update_id]
    # Deleted: nothing fires, nothing raises; the name is looked up again.
    hook.run(operations.delete_pipeline(pipeline_id))
    snapshot = hook.run(watch.poll())
    assert snapshot.pipeline_id is None
    assert update_events_due(cursor, snapshot, ("COMPLETED",)).events == []


@airflow3
def test_the_trigger_polls_through_faults_and_a_missing_pipeline(hook, lakeflow_emulator):
    from airflow_provider_lakeflow.triggers import LakeflowUpdateEventTrigger

    emulator = lakeflow_emulator
    missing = LakeflowUpdateEventTrigger(pipeline_name="nope", poll_interval=0.1)

    async def no_event_from_missing():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(anext(missing.run()), 1.5)

    asyncio.run(no_event_from_missing())
    pipeline_id = _pipeline(hook, emulator, running=0.5)
    classpath, kwargs = LakeflowUpdateEventTrigger(pipeline_name="sales", poll_interval=0.1).serialize()
    assert classpath == "airflow_provider_lakeflow.triggers.events.LakeflowUpdateEventTrigger"
    trigger = LakeflowUpdateEventTrigger(**kwargs)  # as the triggerer re-creates it
    # 503s beyond the request layer's own retries: the watcher logs and polls again.
    emulator.inject_fault(r"/updates$", method="GET", status=503, count=None)

    async def first_event():
        events = trigger.run()
        first = asyncio.ensure_future(anext(events))
        await asyncio.sleep(1.0)
        assert not first.done()
        update_id = emulator.start_update_externally(pipeline_id)
        await asyncio.sleep(1.0)
        emulator.clear_faults()
        event = await asyncio.wait_for(first, 20)
        await events.aclose()
        return update_id, event.payload

    update_id, payload = asyncio.run(first_event())
    assert payload["update_id"] == update_id and payload["state"] == "COMPLETED"
    assert set(payload) == {"pipeline_id", "update_id", "state", "cause", "update_url", "table_metrics"}


class _MemoryAccessor:
    """Stands in for one asset's state store accessor (Airflow's comms to its supervisor need a triggerer)."""

    def __init__(self) -> None:
        self.values: dict = {}
        self.writes = 0

    async def aget(self, key, default=None):
        return self.values.get(key, default)

    async def aset(self, key, value):
        self.writes += 1
        self.values[key] = value


class _Accessors:
    def __init__(self) -> None:
        self.one = _MemoryAccessor()

    def _single_accessor(self):
        return self.one


@airflow3
def test_table_watchers_share_one_poll_and_store_their_cursor_after_the_event_is_stored(hook, lakeflow_emulator):
    """Twenty watchers in Airflow's own SharedStreamManager (ack mode), driven as the triggerer drives them."""
    from airflow.triggers.shared_stream import SharedStreamManager

    from airflow_provider_lakeflow.triggers import LakeflowTableLandedTrigger

    emulator = lakeflow_emulator
    pipeline_id = _pipeline(hook, emulator, running=0.6)
    triggers = [
        LakeflowTableLandedTrigger(table="main.sales.account", pipeline_id=pipeline_id, poll_interval=0.5)
        for _ in range(20)
    ]
    for trigger in triggers:
        trigger.asset_state_store = _Accessors()
    assert len({t.shared_stream_key() for t in triggers}) == 1

    async def scenario():
        manager = SharedStreamManager()
        events: list[tuple[int, object, int | None]] = []

        async def consume(i, trigger):
            stream = manager.subscribe(trigger_id=i, trigger=trigger, key=trigger.shared_stream_key())
            async for event in trigger.filter_shared_stream(stream):
                events.append((i, event, manager.bind_pending_event(trigger_id=i, key=trigger.shared_stream_key())))

        tasks = [asyncio.ensure_future(consume(i, t)) for i, t in enumerate(triggers)]
        await asyncio.sleep(1.2)  # the first poll: every watcher stores its starting cursor
        emulator.clear_requests()
        await asyncio.sleep(1.2)
        idle_event_reads = len(emulator.requests(r"/events$", "GET"))
        emulator.clear_requests()
        started = time.monotonic()
        update_id = emulator.start_update_externally(pipeline_id)
        while len(events) < 20 and time.monotonic() - started < 15:
            await asyncio.sleep(0.1)
        polls = len(emulator.requests(r"/updates$", "GET"))
        elapsed = time.monotonic() - started
        cursors_before = [t.asset_state_store.one.values.copy() for t in triggers]
        manager.confirm_persisted([seq for _, _, seq in events if seq is not None])  # the supervisor stored them
        await asyncio.sleep(1.2)  # the next raw event resolves the fired one; advance writes the cursors
        cursors_after = [t.asset_state_store.one.values.copy() for t in triggers]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await manager.stop_all()
        return update_id, events, polls, elapsed, cursors_before, cursors_after, idle_event_reads

    update_id, events, polls, elapsed, before, after, idle_event_reads = asyncio.run(scenario())
    assert idle_event_reads == 0  # no update running: the event log is not read
    assert sorted(i for i, _, _ in events) == list(range(20))
    assert {e.payload["update_id"] for _, e, _ in events} == {update_id}
    # One list_updates a poll for all twenty (give or take the poll in flight at either end).
    assert polls <= elapsed / 0.5 + 2
    # Each cursor moved past the update only after its event was stored.
    assert all(update_id not in json.dumps(c) for c in before)
    assert all(update_id in json.dumps(c) for c in after)


@airflow3
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "pipeline_id / pipeline_name"),
        ({"pipeline_id": "a", "pipeline_name": "b"}, "pipeline_id / pipeline_name"),
        ({"pipeline_id": ""}, "pipeline_id"),
        ({"pipeline_name": "{{ params.p }}"}, "pipeline_name"),
        ({"pipeline_id": "a", "poll_interval": 0}, "poll_interval"),
        ({"pipeline_id": "a", "databricks_conn_id": ""}, "databricks_conn_id"),
        ({"pipeline_id": "a", "states": ("DONE",)}, "states"),
        ({"pipeline_id": "a", "states": "COMPLETED"}, "states"),
    ],
)
def test_bad_update_trigger_arguments_name_the_field(kwargs, field):
    from airflow_provider_lakeflow.triggers import LakeflowUpdateEventTrigger

    with pytest.raises(LakeflowInputError, match=f"^{re.escape(field)}"):
        LakeflowUpdateEventTrigger(**kwargs)


@airflow3
@pytest.mark.parametrize("table", ["account", "sales.account", "main..account", "a.b.c.d", None])
def test_bad_table_names_the_field(table):
    from airflow_provider_lakeflow.assets import lakeflow_table_asset

    with pytest.raises(LakeflowInputError, match=r"^table must be"):
        lakeflow_table_asset(table, workspace_host="https://x.cloud.databricks.com", pipeline_id="p")


@airflow3
def test_table_asset_has_the_run_operators_uri_and_parsing_it_stays_light():
    from airflow_provider_lakeflow.assets import lakeflow_table_asset
    from airflow_provider_lakeflow.lineage import asset_uri

    host = "https://adb-1.7.azuredatabricks.net"
    asset = lakeflow_table_asset("main.sales.account", workspace_host=host, pipeline_name="sf", poll_interval=5)
    assert (
        asset.uri
        == asset_uri(host, "main.sales.account")
        == "databricks://adb-1.7.azuredatabricks.net/main/sales/account"
    )
    (watcher,) = asset.watchers
    assert watcher.trigger.serialize()[1] == {
        "table": "main.sales.account",
        "pipeline_id": None,
        "pipeline_name": "sf",
        "databricks_conn_id": "databricks_default",
        "poll_interval": 5.0,
    }
    with pytest.raises(LakeflowInputError, match=r"^workspace_host"):
        lakeflow_table_asset("main.sales.account", workspace_host="", pipeline_name="sf")
    code = (
        "import sys\n"
        "from airflow_provider_lakeflow.assets import lakeflow_table_asset\n"
        "lakeflow_table_asset('main.sales.account', workspace_host='https://h', pipeline_name='sf')\n"
        "print([m for m in ('databricks.sdk', 'aiohttp') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.skipif(EVENT_SCHEDULING, reason="what Airflow 2 users see")
def test_on_airflow_2_the_module_imports_and_using_it_says_airflow_3_is_needed():
    from airflow.exceptions import AirflowException

    from airflow_provider_lakeflow.assets import lakeflow_table_asset
    from airflow_provider_lakeflow.triggers import LakeflowTableLandedTrigger, LakeflowUpdateEventTrigger

    for make in (
        lambda: LakeflowUpdateEventTrigger(pipeline_id="p"),
        lambda: LakeflowTableLandedTrigger(table="main.sales.account", pipeline_id="p"),
        lambda: lakeflow_table_asset("main.sales.account", workspace_host="https://h", pipeline_id="p"),
    ):
        with pytest.raises(AirflowException, match="needs Airflow 3"):
            make()


@airflow3
def test_two_copies_of_one_watcher_fire_an_update_once(hook, lakeflow_emulator):
    """A failover that overlaps (the old triggerer still runs), or a re-parsed DAG whose old trigger still runs: both
    copies watch one Asset, whose stored cursor the second copy reads before it fires."""
    from airflow_provider_lakeflow.triggers import LakeflowUpdateEventTrigger

    emulator = lakeflow_emulator
    pipeline_id = _pipeline(hook, emulator, running=0.3)
    store = _Accessors()
    copies = [LakeflowUpdateEventTrigger(pipeline_id=pipeline_id, poll_interval=0.25) for _ in range(2)]
    for trigger in copies:
        trigger.asset_state_store = store

    async def scenario():
        fired: list[tuple[int, str]] = []

        async def consume(i, trigger):
            async for event in trigger.run():
                fired.append((i, event.payload["update_id"]))

        tasks = [asyncio.ensure_future(consume(i, t)) for i, t in enumerate(copies)]
        await asyncio.sleep(1.0)
        update_id = emulator.start_update_externally(pipeline_id)
        await asyncio.sleep(3.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return update_id, fired

    update_id, fired = asyncio.run(scenario())
    assert [u for _, u in fired] == [update_id]
