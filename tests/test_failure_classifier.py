"""The classifier on its own (pure functions over event dicts), the emulator's condition messages on the wire, and
the exception's contract with Airflow."""

from __future__ import annotations

import pickle
import re

import pytest

from airflow_provider_lakeflow.failures.classify import CATEGORIES, RULES, classify, parse_condition, rule_for
from airflow_provider_lakeflow.testing.emulator.lifecycle.condition_catalog import CONDITIONS, render

SPEC = {
    "ingestion_definition": {
        "objects": [
            {
                "table": {
                    "source_catalog": "erp",
                    "source_schema": "dbo",
                    "source_table": "Orders",
                    "destination_catalog": "main",
                    "destination_schema": "bronze",
                    "destination_table": "orders_v2",
                }
            },
            {"schema": {"source_schema": "objects", "destination_catalog": "main", "destination_schema": "sf"}},
        ]
    }
}


def _error_event(message: str, origin: dict | None = None) -> dict:
    return {
        "level": "ERROR",
        "event_type": "flow_progress",
        "origin": {"pipeline_id": "p", "update_id": "u", **(origin or {})},
        "error": {"fatal": False, "exceptions": [{"class_name": "x.DLTException", "message": message}]},
    }


def _classify(*events: dict, spec: dict | None = SPEC, state: str = "FAILED"):
    return classify(list(events), pipeline_id="p", update_id="u", state=state, update_url="http://h/u", spec=spec)


def test_parse_condition_and_sqlstate():
    message = "[SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.PRIMARY_KEY_CHANGE] A schema change ... SQLSTATE: 42KD4"
    assert parse_condition(message) == ("SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.PRIMARY_KEY_CHANGE", "42KD4")
    assert parse_condition("com.databricks.X: [DC_API_QUOTA_EXCEEDED.SFDC_API_DAILY_QUOTA_THRESHOLD_EXCEEDED] q") == (
        "DC_API_QUOTA_EXCEEDED.SFDC_API_DAILY_QUOTA_THRESHOLD_EXCEEDED",
        None,
    )
    assert parse_condition("no condition [here] at all") == (None, None)


def test_category_comes_from_condition_not_prose():
    # The prose says "full refresh", the condition says a re-run picks it up: the condition wins.
    text = "[SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.NEW_COLUMNS] please FULL REFRESH everything SQLSTATE: 42KD4"
    assert _classify(_error_event(text)).category == "schema_change_rerun"


def test_unknown_sub_condition_falls_back_to_its_class_and_sqlstate():
    assert rule_for("SAAS_UC_CONNECTION_INACCESSIBLE.SOMETHING_NEW", None).category == "connection_unavailable"
    assert rule_for("SAAS_CONNECTOR_API_SOURCE_RETRIEVER_ERROR.RESPONSE_BODY_PARSE_ERROR", "KD000").category == (
        "source_error"
    )
    assert rule_for("BRAND_NEW_CONDITION", "42KD4").category == "schema_change_full_refresh"
    assert rule_for("BRAND_NEW_CONDITION", "28000").category == "source_credentials"
    assert rule_for("BRAND_NEW_CONDITION", "KD000").category == "unknown"
    # A schema change this provider knows no documented fix for is never remedied automatically.
    failure = _classify(_error_event("[BRAND_NEW] x SQLSTATE: 42KD4", {"dataset_name": "main.sf.a"}))
    assert failure.category == "schema_change_full_refresh" and failure.full_refresh_tables() is None


def test_unforeseen_spec_validation_error_is_invalid_spec():
    text = (
        "[MANAGED_INGESTION_PIPELINE_SPEC_VALIDATION_ERROR.SOME_RULE_ADDED_LATER] The spec is invalid. SQLSTATE: 42000"
    )
    failure = _classify({**_error_event(text), "event_type": "update_progress"})
    assert failure.category == "invalid_spec"
    assert failure.retry is False
    assert "Correct the pipeline spec" in failure.fix


def test_source_table_maps_to_destination_through_the_spec():
    text = "[CDC_INCOMPATIBLE_SCHEMA_CHANGES.PRIMARY_KEY_CHANGE] ... SQLSTATE: 42KD4"
    origin = {
        "ingestion_source_catalog_name": "erp",
        "ingestion_source_schema_name": "dbo",
        "ingestion_source_table_name": "Orders",
    }
    failure = _classify(_error_event(text, origin))
    assert failure.tables == ["main.bronze.orders_v2"]
    assert failure.full_refresh_tables() == ["main.bronze.orders_v2"]
    assert "full_refresh_selection=['main.bronze.orders_v2']" in failure.fix


def test_table_named_only_in_the_message_maps_through_the_spec():
    text = (
        "[SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.PRIMARY_KEY_CHANGE] A schema change has occurred in table dbo.Orders "
        "of the SQLSERVER source. SQLSTATE: 42KD4"
    )
    assert _classify(_error_event(text)).tables == ["main.bronze.orders_v2"]
    # A schema spec: the source schema's tables land in its destination schema under their own names.
    text = "[SAAS_CONNECTOR_DUPLICATE_DATA.IDENTICAL_ROWS] Found duplicate data in table objects.Lead of SALESFORCE."
    assert _classify(_error_event(text)).tables == ["main.sf.Lead"]


def test_spec_is_read_only_when_an_event_lacks_the_destination():
    calls = []

    def spec():
        calls.append(1)
        return SPEC

    text = "[DC_API_QUOTA_EXCEEDED.SFDC_API_DAILY_QUOTA_THRESHOLD_EXCEEDED] quota"
    classify(
        [_error_event(text, {"dataset_name": "main.sf.a"})],
        pipeline_id="p",
        update_id="u",
        state="FAILED",
        update_url="",
        spec=spec,
    )
    assert calls == []
    classify([_error_event(text)], pipeline_id="p", update_id="u", state="FAILED", update_url="", spec=spec)
    assert calls == [1]


def test_update_level_repeat_of_a_flow_error_is_one_error():
    text = "[SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.COLUMN_RENAME] x SQLSTATE: 42KD4"
    failure = _classify(
        _error_event(text, {"dataset_name": "main.sf.a"}),
        {**_error_event(text), "event_type": "update_progress"},
        _error_event("java.lang.RuntimeException: Update failed"),
    )
    assert [(e.condition, e.table) for e in failure.errors] == [
        ("SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.COLUMN_RENAME", "main.sf.a")
    ]
    assert failure.messages == [text, "java.lang.RuntimeException: Update failed"]  # raw messages all kept


def test_several_categories_take_the_most_urgent_and_no_retry_wins():
    failure = _classify(
        _error_event("[DC_API_QUOTA_EXCEEDED.SFDC_API_DAILY_QUOTA_THRESHOLD_EXCEEDED] q"),
        _error_event("[DC_CONNECTION_ERROR.INVALID_CREDENTIALS] c SQLSTATE: KD000"),
    )
    assert failure.category == "source_credentials"
    assert failure.retry is False
    assert failure.fix.startswith("(1) ") and "(2) " in failure.fix


def test_cancelled_and_empty():
    assert _classify(state="CANCELED").category == "cancelled"
    empty = _classify()
    assert empty.category == "unknown" and empty.retry is True


def test_every_rule_names_a_category():
    assert {r.category for r in RULES.values()} <= set(CATEGORIES)


@pytest.mark.parametrize("name", sorted(CONDITIONS))
def test_every_emulated_condition_renders_in_databricks_format_and_is_classified(name):
    condition = CONDITIONS[name]
    full = f"{name}.{sorted(condition.subs)[0]}" if condition.subs else name
    message = render(full, {"tableName": "objects.Account"})
    assert re.match(r"^\[[A-Z0-9_]+(\.[A-Z0-9_]+)?\] ", message)
    assert message.endswith(f" SQLSTATE: {condition.sqlstate}") if condition.sqlstate else "SQLSTATE" not in message
    assert parse_condition(message) == (full, condition.sqlstate)
    assert rule_for(full, condition.sqlstate).category != "unknown"


def test_update_failed_is_an_airflow_exception_and_no_retry_is_a_fail_exception():
    from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

    from airflow_provider_lakeflow.errors import LakeflowUpdateFailed, LakeflowUpdateFailedNoRetry

    fields = {"category": "unknown", "error_classes": [], "tables": ["a.b.c"], "fix": "f", "update_url": "u"}
    retryable = LakeflowUpdateFailed("m", **fields)
    final = LakeflowUpdateFailedNoRetry("m", **fields)
    assert isinstance(retryable, AirflowException) and not isinstance(retryable, AirflowFailException)
    assert isinstance(final, LakeflowUpdateFailed) and isinstance(final, AirflowFailException)
    copy = pickle.loads(pickle.dumps(final))
    assert type(copy) is LakeflowUpdateFailedNoRetry and copy.tables == ["a.b.c"] and str(copy) == "m"


def test_bad_policies_fail_at_parse_time():
    from airflow_provider_lakeflow.errors import LakeflowInputError
    from airflow_provider_lakeflow.operators import LakeflowRunPipelineOperator
    from airflow_provider_lakeflow.sensors import LakeflowPipelineUpdateSensor

    with pytest.raises(LakeflowInputError, match=r"on_schema_change='refresh'.*full_refresh_tables"):
        LakeflowRunPipelineOperator(task_id="t", pipeline_id="p", on_schema_change="refresh")
    with pytest.raises(LakeflowInputError, match=r"on_no_data='error'.*'warn'"):
        LakeflowRunPipelineOperator(task_id="t", pipeline_id="p", on_no_data="error")
    with pytest.raises(LakeflowInputError, match="max_age must be a positive"):
        LakeflowPipelineUpdateSensor(task_id="t", pipeline_id="p", max_age=0)
    with pytest.raises(LakeflowInputError, match="drop update_id"):
        LakeflowPipelineUpdateSensor(task_id="t", pipeline_id="p", update_id="u", max_age=60)


def test_emulator_cli_lists_the_conditions(capsys):
    from airflow_provider_lakeflow.testing.emulator.__main__ import main

    assert main(["--list-conditions"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.PRIMARY_KEY_CHANGE 42KD4" in lines
    assert "CANNOT_WRITE_TO_INACTIVE_TABLES -" in lines
