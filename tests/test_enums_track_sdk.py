"""Lists kept by hand (so that DAG parsing never imports databricks-sdk) must match the SDK's own enums."""

from __future__ import annotations

from databricks.sdk.service.catalog import ConnectionType
from databricks.sdk.service.pipelines import UpdateInfoState

from airflow_provider_lakeflow.connection_options import CONNECTION_TYPES
from airflow_provider_lakeflow.workspace.waiting import KNOWN_UPDATE_STATES


def test_connection_types_match_the_sdk():
    assert {t.value for t in ConnectionType} - {"UNKNOWN_CONNECTION_TYPE"} == set(CONNECTION_TYPES)


def test_update_states_match_the_sdk():
    assert {s.value for s in UpdateInfoState} == set(KNOWN_UPDATE_STATES)
