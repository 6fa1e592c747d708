"""Databricks' documented Lakeflow Connect error conditions: the catalog the emulator renders errors from.

Each condition renders as Databricks renders errors: ``[CLASS.SUB] <message with its parameters> SQLSTATE: XXXXX``
(no SQLSTATE part where Databricks assigns none). The messages follow the wording of Databricks' error-condition
reference; a client must key on the condition and SQLSTATE, never on this prose. ``conditions.py`` scripts them onto
updates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Condition:
    """One documented error class: SQLSTATE, top-level message, sub-conditions, and which parameter names the table."""

    sqlstate: str | None
    message: str
    subs: dict[str, str] = field(default_factory=dict)
    table_param: str | None = None
    #: Sub-conditions (or "*" for all) whose documented fix is a full refresh of the table.
    full_refresh: frozenset[str] = frozenset()


_SCHEMA_CHANGE_SUBS = {
    "COLUMN_RENAME": "New columns <newColumns> were added and existing columns <missingColumns> were dropped at the "
    "same time. One or more columns may have been renamed. Please perform a FULL REFRESH on the specific destination "
    "table.",
    "COLUMN_TYPE_CHANGE": "The data types of columns <columnNames> have changed. Please re-run the entire pipeline or "
    "refresh the specific destination table to apply the new data types.",
    "CURSOR_KEY_CHANGE": "The cursor key has changed from <oldKey> to <newKey>. Please perform a FULL REFRESH on the "
    "specific destination table.",
    "DROP_COLUMNS": "Columns <droppedColumns> have been dropped. Please re-run the entire pipeline or refresh the "
    "specific destination table to update to the new schema.",
    "DROP_TABLE": "The destination table has been dropped from the source. It will be removed from the pipeline on "
    "the next run, but the destination will be kept. To remove the destination table, drop it manually.",
    "INCOMPATIBLE_COLUMN_TYPE_CHANGE": "The data types of at least one of the columns <columnNames> have changed and "
    "cannot be processed properly. Please perform a FULL REFRESH on the specific destination table.",
    "NEW_COLUMNS": "New columns <newColumns> were added. Please re-run the entire pipeline or refresh the specific "
    "destination table to include the new columns.",
    "PRIMARY_KEY_CHANGE": "The primary key has changed from <oldKey> to <newKey>. Please perform a FULL REFRESH on the "
    "specific destination table.",
}
_SCHEMA_CHANGE_FR = frozenset(
    {"COLUMN_RENAME", "CURSOR_KEY_CHANGE", "INCOMPATIBLE_COLUMN_TYPE_CHANGE", "PRIMARY_KEY_CHANGE"}
)
_UNSUPPORTED_SUBS = {
    "SFDC_REST_API_UNSUPPORTED_OBJECT": "The Salesforce object <objectName> is not supported: it has too many fields, "
    "or no primary or sequence key.",
    "UNSUPPORTED_FIELD_TYPE": "Field <fieldName> of table <tableName> has type <saasUnsupportedFieldType>, which is "
    "not supported. Please exclude the table.",
    "UNSUPPORTED_OPERATION": "The operation is not supported.",
    "UNSUPPORTED_SCHEMA_CHANGE": "An unsupported schema change was detected in table <tableName>. Please perform a "
    "FULL REFRESH on the table.",
    "UNSUPPORTED_SFDC_OBJECT": "The Salesforce object <objectName> is not supported. Please exclude it.",
    "UNSUPPORTED_SOURCE": "The source is not supported.",
}
_PG_SUBS = {
    "INSUFFICIENT_PRIVILEGE": "Insufficient privilege: <errorMessage>",
    "MAX_SLOT_EXCEEDED": "The maximum number of replication slots was reached: <errorMessage>",
    "UNKNOWN_ERROR": "<errorMessage>",
}
_PG_MESSAGE = "Failed for <entityType> <entityName>."

#: The documented conditions (Databricks' error-condition reference for Lakeflow Connect).
CONDITIONS: dict[str, Condition] = {
    "SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR": Condition(
        "42KD4",
        "A schema change has occurred in table <tableName> of the <sourceName> source.",
        _SCHEMA_CHANGE_SUBS,
        "tableName",
        _SCHEMA_CHANGE_FR,
    ),
    "DC_SCHEMA_CHANGE_ERROR": Condition(
        None,
        "A schema change has occurred in table <tableName> of the <sourceName> source.",
        _SCHEMA_CHANGE_SUBS,
        "tableName",
        _SCHEMA_CHANGE_FR,
    ),
    "CDC_INCOMPATIBLE_SCHEMA_CHANGES": Condition(
        "42KD4",
        "We encountered an incompatible schema change from schema version <previousSchemaVersion> to "
        "<currentSchemaVersion>. Therefore we cannot proceed on applying changes for <tableName>. Please request a "
        "full refresh of the table. Previous schema: <previousSchema> Current schema: <currentSchema>",
        {
            "ADD_COLUMN_WITH_BACKFILL": "Added column <colName> needs backfill",
            "COLUMNS_ADDED_AND_DELETED": "Columns both added and deleted in consecutive schema versions",
            "COLUMN_NULLABLE_TO_NON_NULLABLE": "Column <colName> changed from nullable to non-nullable",
            "NON_INCREMENTAL_SCHEMA_CHANGE": "Non incremental schema change detected from gateway",
            "PRIMARY_KEY_CHANGE": "Primary key change detected from <oldPrimaryKeys> to <newPrimaryKeys>",
            "UNSUPPORTED_DATA_TYPE_CHANGE": "Unsupported column data type change",
        },
        "tableName",
        frozenset({"*"}),
    ),
    "SAAS_CONNECTOR_UNSUPPORTED_ERROR": Condition(
        "0A000",
        "Unsupported error in data source <sourceName>.",
        _UNSUPPORTED_SUBS,
        "tableName",
        frozenset({"UNSUPPORTED_SCHEMA_CHANGE"}),
    ),
    "DC_UNSUPPORTED_ERROR": Condition(
        "0A000", "Unsupported error in data source <sourceName>.", _UNSUPPORTED_SUBS, "tableName"
    ),
    "SAAS_CONNECTOR_DUPLICATE_DATA": Condition(
        None,
        "Found duplicate data in table <tableName> of the <sourceName> source.",
        {
            "IDENTICAL_ROWS": "Found <count> identical rows, for example <rowExample>. Remove the duplicates at the "
            "source and re-run the pipeline.",
            "ROWS_WITH_SAME_PRIMARY_KEY": "Found <count> rows with the same primary key <keys>, for example "
            "<keyExample>. Remove the duplicates at the source, or set the primary keys to __databricks_id with SCD "
            "TYPE 1 and fully refresh the table.",
        },
        "tableName",
    ),
    "QUERY_BASED_CONNECTOR_DUPLICATE_RECORDS": Condition(
        "KD000",
        "Found <count> duplicate records for key <key> in table <tableName>, which has no primary key.",
        {
            "FULL_REFRESH_MAY_RESOLVE": "This may be a hash collision; a full refresh of the pipeline may resolve it.",
            "SOURCE_HAS_DUPLICATES": "The source has duplicate records; clean them up at the source.",
        },
        "tableName",
    ),
    "QUERY_BASED_INGESTION_CONNECTOR_ERROR": Condition(
        "0A000",
        "An error occurred in the query-based ingestion connector for <sourceName>.",
        {"INVALID_CURSOR_COLUMNS": "The cursor of table <tableName> must be exactly one column."},
        "tableName",
    ),
    "DC_CONNECTION_ERROR": Condition(
        "KD000",
        "Failed to connect to the <sourceName> source. Error code: <errorCode>.",
        {
            "INVALID_CREDENTIALS": "The credentials are invalid. Please update them.",
            "OAUTH_TOKEN_EXCHANGE": "The OAuth token exchange failed: <errorDescription> (<errorUri>).",
            "SERVER_UNAVAILABLE": "The source server is unavailable. Check the source account, then retry.",
            "UNCLASSIFIED_ERROR": "An unclassified error occurred. Please file a ticket.",
        },
    ),
    "SAAS_UC_CONNECTION_INACCESSIBLE": Condition(
        "08000",
        "The connection <connectionName> is inaccessible.",
        {
            "NO_CONNECTION_EXISTS": "No connection with that name exists. Please check the name.",
            "USE_CONNECTION_PERMISSION_DENIED": "Permission denied: USE CONNECTION is required.",
        },
    ),
    "DC_API_QUOTA_EXCEEDED": Condition(
        "KD000",
        "The API quota of the <sourceName> source was exceeded.",
        {
            "SFDC_API_DAILY_QUOTA_THRESHOLD_EXCEEDED": "The <type> daily API usage <usage> exceeds the threshold "
            "<quota>. Raise the quota or run this and other Salesforce pipelines less often."
        },
    ),
    "SFDC_CONNECTOR_BULK_QUERY_JOB_INCOMPLETE": Condition(
        "KD000",
        "The bulk query job for object <objName> did not complete.",
        {
            "MISSING_VIEW_ALL_DATA_PERMISSION": 'The user lacks the "View All Data" permission.',
            "WITH_ERROR_MESSAGE": "Job <saasJobId> is <saasJobStatus>: <saasJobErrorMessage>",
            "WITH_RETRY_SUGGESTION": "Job <saasJobId> is <saasJobStatus>. Please re-run the pipeline.",
        },
        "objName",
    ),
    "DC_SFDC_API_ERROR": Condition(
        "KD000",
        "A Salesforce API error occurred. Error code: <errorCode>.",
        {
            "FAILED_TO_EXECUTE_REST_API_QUERY": "Failed to execute the REST API query on <objName> (<opType>).",
            "FAIL_TO_CREATE_BULK_QUERY_JOB": "Failed to create the bulk query job for <objName>.",
        },
        "objName",
    ),
    "SERVICENOW_CONNECTOR_UNAUTHORIZED_ACCESS_ERROR": Condition(
        "KD000",
        "Unauthorized access to the ServiceNow <saasSourceApiType> API.",
        {
            "MISSING_USERACCOUNT_AUTH_SCOPE": "The OAuth application lacks the useraccount scope.",
            "TABLE_ACCESS_INSUFFICIENT_RIGHTS": "Insufficient rights to read table <tableName>.",
            "UNAUTHORIZED_FIELD_READ_ACCESS": "Not authorized to read fields of table <tableName>.",
        },
        "tableName",
    ),
    "DC_SQLSERVER_ERROR": Condition(
        "KD000",
        "A SQL Server error occurred.",
        {
            "CDC_NOT_ENABLED": "Change data capture is not enabled on <tableName>. Enable it and restart.",
            "INVALID_INITIALIZED_OFFSET": "Streaming failed during the snapshot. Please fully refresh the pipeline.",
        },
        "tableName",
    ),
    "DC_GA4_RAW_DATA_ERROR": Condition(
        "KD000",
        "A GA4 raw data error occurred. Error code: <errorCode>.",
        {"JOBS_API_READ_ROWS_FAILED": "Reading rows of <tableName> failed."},
        "tableName",
    ),
    "DC_WORKDAY_RAAS_API_ERROR": Condition(
        "KD000",
        "A Workday RaaS API error occurred. Error code: <errorCode>.",
        {"REPORT_URL_PARSING_FAILED": "The report URL <reportUrl> could not be parsed."},
    ),
    "DC_CONNECTOR_ERROR": Condition(
        "KD000",
        "An error occurred in the <sourceName> connector. Error code: <errorCode>.",
        {
            "INVALID_TABLE_NAME": "The table name <tableName> is invalid.",
            "LIST_TABLES_FAILED": "Listing the tables of <namespace> failed.",
        },
        "tableName",
    ),
    "SAAS_CONNECTOR_API_SOURCE_REQUESTER_ERROR": Condition(
        "KD000",
        "The request to the source failed.",
        {
            "INVALID_CREDENTIALS": "The credentials for <table> at <url> are invalid after a refresh.",
            "REQUEST_FAILED": "The request for <table> at <url> failed: <detail>",
        },
        "table",
    ),
    "INGESTION_GATEWAY_OPERATION_TIMEOUT": Condition(
        "58000",
        "The ingestion gateway operation timed out. This may be transient.",
        {
            "FETCH_METADATA": "Fetching metadata timed out.",
            "REINITIALIZATION": "Reinitialization timed out.",
            "TEST_CONNECTION": "Testing the connection timed out. Check reachability, network and authentication.",
        },
    ),
    "INGESTION_GATEWAY_DATABASE_UNAVAILABLE": Condition(
        "42000",
        "The source database is unavailable.",
        {"SHUTDOWN_IN_PROGRESS": "A shutdown is in progress: <errorMessage>. Retry once the source is back."},
    ),
    "INGESTION_GATEWAY_STATEMENTS_ERROR": Condition(
        None,
        "Executing statements on the source failed.",
        {
            "SOURCE_STATEMENT_EXECUTION_FAILURE": "<errorMessage>",
            "MYSQL_BINLOG_EVENT_TOO_LARGE": "A binlog event of <entityName> exceeds 1 GiB. Make source transactions "
            "smaller, then fully refresh the pipeline.",
        },
        "entityName",
    ),
    "INGESTION_GATEWAY_MYSQL_BINLOG_CORRUPTION": Condition(
        "42000",
        "The MySQL binlog for <entityName> is corrupt: <errorMessage>",
        {
            "FILE_DELETED": "Binlog files were deleted. Fully refresh all tables and raise the binlog retention.",
            "MISSING_FILES_DETECTED": "Missing binlog files detected. Fully refresh the affected table.",
        },
        "entityName",
    ),
    "INGESTION_GATEWAY_PG_SLOT_CREATION_FAILED": Condition("42000", _PG_MESSAGE, _PG_SUBS, "entityName"),
    "INGESTION_GATEWAY_PG_SLOT_DROP_FAILED": Condition("42000", _PG_MESSAGE, _PG_SUBS, "entityName"),
    "INGESTION_GATEWAY_PG_PUBLICATION_CREATION_FAILED": Condition("42000", _PG_MESSAGE, _PG_SUBS, "entityName"),
    "INGESTION_GATEWAY_SQL_SERVER_UNSUPPORTED_NON_TRIGGER_BASED_DDL_SETUP": Condition(
        "42000",
        "The non-trigger based DDL capture setup of <entityName> is not supported.",
        {
            "SQL_SERVER_CT_NON_TRIGGER_DDL_UOID_MISSING": "Enable table and column UOID, then fully refresh.",
            "SQL_SERVER_CT_NON_TRIGGER_DDL_CONFIG_CHANGED_FROM_NON_TRIGGERED_TO_TRIGGERED": "The DDL capture "
            "configuration changed. Please fully refresh.",
        },
        "entityName",
    ),
    "MIGRATION_TO_INTEGRATED_CDC_FAILURE": Condition(
        "42000",
        "Migrating to integrated CDC failed.",
        {"SOURCE_GATEWAY_RUNNING": "The source gateway <gatewayId> is running. Cancel it and wait."},
    ),
    "CANNOT_WRITE_TO_INACTIVE_TABLES": Condition(
        None, "Table '<tableName>' is marked as inactive: its source table was deleted.", {}, "tableName"
    ),
    "MANAGED_INGESTION_PIPELINE_SPEC_VALIDATION_ERROR": Condition(
        "42000",
        "The managed ingestion pipeline spec is invalid.",
        {
            "CATALOG_MISMATCH": "The pipeline catalog must equal each object's destination_catalog.",
            "CONNECTION_RETRIEVAL_FAILED": "The connection <connectionName> could not be retrieved.",
            "DESTINATION_CATALOG_CANNOT_CHANGE": "The destination catalog cannot change.",
            "AUTO_FULL_REFRESH_POLICY_NOT_ENABLED": "The auto full refresh policy is not enabled for this workspace.",
        },
    ),
    "INGESTION_GATEWAY_PIPELINE_SPEC_VALIDATION_ERROR": Condition(
        "42000",
        "The ingestion gateway pipeline spec is invalid.",
        {"PHOTON_NOT_SUPPORTED": "Photon is not supported; set photon to false."},
    ),
}


def split(name: str) -> tuple[Condition, str, str | None]:
    """``CLASS.SUB`` -> (its condition, CLASS, SUB or None); a ValueError naming the known ones otherwise."""
    base, _, sub = name.partition(".")
    condition = CONDITIONS.get(base)
    if condition is None:
        raise ValueError(f"condition {name!r} is not one the emulator knows; known: {', '.join(sorted(CONDITIONS))}")
    if sub and condition.subs and sub not in condition.subs:
        raise ValueError(f"condition {base} has no sub-condition {sub!r}; known: {', '.join(sorted(condition.subs))}")
    if not sub and condition.subs:
        raise ValueError(f"condition {base} needs a sub-condition: one of {', '.join(sorted(condition.subs))}")
    return condition, base, sub or None


def needs_full_refresh(name: str) -> bool:
    condition, _, sub = split(name)
    return "*" in condition.full_refresh or (sub is not None and sub in condition.full_refresh)


def render(name: str, parameters: dict[str, Any]) -> str:
    """``[CLASS.SUB] message SQLSTATE: XXXXX``, each ``<param>`` replaced (unknown ones become ``<param>`` as is)."""
    condition, _, sub = split(name)
    text = condition.message + (f" {condition.subs[sub]}" if sub else "")
    text = re.sub(r"<(\w+)>", lambda m: str(parameters.get(m.group(1), f"<{m.group(1)}>")), text)
    suffix = f" SQLSTATE: {condition.sqlstate}" if condition.sqlstate else ""
    return f"[{name}] {text}{suffix}"
