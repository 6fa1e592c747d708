"""The workspace's own spec rules that a client can check, so that they fail before any request.

These are the sub-conditions of MANAGED_INGESTION_PIPELINE_SPEC_VALIDATION_ERROR and
INGESTION_GATEWAY_PIPELINE_SPEC_VALIDATION_ERROR that Databricks documents and that need nothing but the spec (or,
for an edit, the live pipeline's spec), plus the rules the SDK's field documentation states. Each error names the
field, the fix and, where Databricks documents one, the error condition the workspace would answer with.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from airflow_provider_lakeflow.spec.errors import PipelineSpecError
from airflow_provider_lakeflow.workspace import operations

MANAGED = "MANAGED_INGESTION_PIPELINE_SPEC_VALIDATION_ERROR"
GATEWAY = "INGESTION_GATEWAY_PIPELINE_SPEC_VALIDATION_ERROR"
ID = "ingestion_definition"
#: The kinds of object an ingestion definition lists.
OBJECT_KINDS = ("table", "schema", "report")

_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`")
_WHERE = re.compile(r"\bwhere\b", re.IGNORECASE)


def _objects(definition: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(field path, kind, body) for each well-formed object."""
    for index, obj in enumerate(definition.get("objects") or []):
        for kind in OBJECT_KINDS:
            body = obj.get(kind) if isinstance(obj, Mapping) else None
            if isinstance(body, Mapping):
                yield f"{ID}.objects[{index}].{kind}", kind, body


def _configs(
    definition: Mapping[str, Any],
) -> Iterator[tuple[str, Mapping[str, Any], Mapping[str, Any], dict[str, str]]]:
    """(object path, object, effective table configuration, field -> path of the level that set it) per object.

    The narrower level wins field by field: an object's ``table_configuration`` over the definition's.
    """
    top = definition.get("table_configuration") or {}
    for path, _kind, body in _objects(definition):
        own = body.get("table_configuration") or {}
        where = {k: f"{ID}.table_configuration.{k}" for k, v in top.items() if v is not None}
        where.update({k: f"{path}.table_configuration.{k}" for k, v in own.items() if v is not None})
        yield path, body, {**top, **{k: v for k, v in own.items() if v is not None}}, where


def _is_cdc(definition: Mapping[str, Any]) -> bool:
    return bool(definition.get("ingestion_gateway_id")) or definition.get("connector_type") == "CDC"


def _check_table_configurations(definition: Mapping[str, Any]) -> None:
    levels = [(f"{ID}.table_configuration", definition.get("table_configuration"))]
    levels += [(f"{p}.table_configuration", b.get("table_configuration")) for p, _k, b in _objects(definition)]
    for path, config in levels:
        if not isinstance(config, Mapping):
            continue
        row_filter = config.get("row_filter")
        if isinstance(row_filter, str) and _WHERE.search(_QUOTED.sub("''", row_filter)):
            raise PipelineSpecError(
                f"{path}.row_filter",
                "contains WHERE; it is only the condition.",
                "write the condition alone, e.g. \"region = 'EU'\" instead of \"WHERE region = 'EU'\".",
            )
    for path, body, config, where in _configs(definition):
        scd = config.get("scd_type")
        options = body.get("connector_options") or {}
        if scd is not None and isinstance(options, Mapping) and options.get("gdrive_options") is not None:
            raise PipelineSpecError(
                where["scd_type"],
                f"applies to {path}, a Google Drive folder; the Google Drive connector fails on scd_type.",
                "remove scd_type; set table_configuration.storage_mode if at all (APPEND_ONLY for structured files, "
                "SCD_TYPE_1 for BINARYFILE, both the defaults).",
            )
        cursors = (config.get("query_based_connector_config") or {}).get("cursor_columns")
        if scd == "APPEND_ONLY" and (_is_cdc(definition) or not cursors):
            raise PipelineSpecError(
                where["scd_type"],
                "is APPEND_ONLY, which only incremental query-based ingestion supports"
                + (" (this pipeline is CDC)." if _is_cdc(definition) else f", and {path} has no cursor_columns."),
                "set query_based_connector_config.cursor_columns on a query-based pipeline, or use SCD_TYPE_1.",
                condition=f"{MANAGED}.APPEND_ONLY_REQUIRES_CURSOR_COLUMNS",
            )
        policy = config.get("auto_full_refresh_policy")
        if isinstance(policy, Mapping):
            if not _is_cdc(definition):
                raise PipelineSpecError(
                    where["auto_full_refresh_policy"],
                    "is set on a pipeline that is not CDC; auto full refresh is for database CDC only.",
                    "remove it, or ingest through a gateway (ingestion_gateway_id) or with connector_type CDC.",
                    condition=f"{MANAGED}.AUTO_FULL_REFRESH_POLICY_CDC_ONLY",
                )
            if policy.get("enabled") is True and scd == "SCD_TYPE_2":
                raise PipelineSpecError(
                    where["auto_full_refresh_policy"],
                    f"is enabled while {path} keeps history (scd_type SCD_TYPE_2, from {where['scd_type']}).",
                    "a full refresh would drop the history: disable the policy for this table, or use SCD_TYPE_1.",
                    condition=f"{MANAGED}.AUTO_FULL_REFRESH_NOT_SUPPORTED_FOR_SCD_TYPE_2",
                )


#: Source types (``IngestionSourceType``) of database ingestion: CDC through a gateway, or query-based.
DATABASE_SOURCE_TYPES = frozenset({"MANAGED_POSTGRESQL", "MYSQL", "ORACLE", "POSTGRESQL", "SQLSERVER", "TERADATA"})


def _stated_source_type(definition: Mapping[str, Any]) -> str | None:
    source_type = definition.get("source_type")
    return str(source_type).upper() if isinstance(source_type, str) and source_type else None


def _database_without_source_type(definition: Mapping[str, Any]) -> str | None:
    """A database source shown by the definition's other fields: a gateway, a connector type, a foreign catalog."""
    if definition.get("ingestion_gateway_id"):
        return "a database through a gateway"
    if definition.get("connector_type"):
        return f"a database (connector_type {definition['connector_type']})"
    if definition.get("ingest_from_uc_foreign_catalog"):
        return "a foreign catalog"
    return None


def _not_salesforce(definition: Mapping[str, Any]) -> str | None:
    """Why the spec alone shows that the source is not Salesforce, or None when it might be."""
    source_type = _stated_source_type(definition)
    if source_type is not None and source_type != "SALESFORCE":
        return f"a {source_type} source (source_type)"
    database = _database_without_source_type(definition)
    if database:
        return database
    if any(kind == "report" for _p, kind, _b in _objects(definition)):
        return "Workday reports"
    return None


def salesforce_formula_fields(definition: Mapping[str, Any]) -> str | None:
    """The path of the first ``salesforce_include_formula_fields`` in the spec, if any."""
    top = definition.get("table_configuration")
    if isinstance(top, Mapping) and top.get("salesforce_include_formula_fields") is not None:
        return f"{ID}.table_configuration.salesforce_include_formula_fields"
    for path, _kind, body in _objects(definition):
        config = body.get("table_configuration")
        if isinstance(config, Mapping) and config.get("salesforce_include_formula_fields") is not None:
            return f"{path}.table_configuration.salesforce_include_formula_fields"
    return None


def check_salesforce_connection(spec: Mapping[str, Any], connection_type: str | None) -> None:
    """For a spec with ``salesforce_include_formula_fields``: fail unless its connection is a Salesforce one."""
    field = salesforce_formula_fields(spec.get(ID) or {})
    if field and connection_type is not None and connection_type != "SALESFORCE":
        raise PipelineSpecError(
            field,
            f"is for Salesforce, and connection '{spec[ID].get('connection_name')}' is {connection_type}.",
            "remove it.",
        )


def _database(definition: Mapping[str, Any]) -> str | None:
    """Why the spec alone shows that the pipeline ingests from a database, or None when it does not say."""
    database = _database_without_source_type(definition)
    if database:
        return database
    source_type = _stated_source_type(definition)
    if source_type in DATABASE_SOURCE_TYPES:
        return f"a {source_type} database (source_type)"
    return None


def _check_table_names(definition: Mapping[str, Any]) -> None:
    """A database pipeline lands no two tables of one name, whatever their source and destination schemas.

    Databricks documents it among the database connectors' limitations; SaaS connectors land same-named tables in
    different schemas (multi-destination pipelines), so a pipeline the spec does not show to be a database is left
    alone here.
    """
    why = _database(definition)
    if why is None:
        return
    seen: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for path, kind, body in _objects(definition):
        if kind != "table":
            continue
        name = body.get("destination_table") or body.get("source_table")
        if not isinstance(name, str) or not name:
            continue
        if name.lower() in seen:
            first, other = seen[name.lower()]
            theirs = f"{other.get('destination_catalog')}.{other.get('destination_schema')}"
            raise PipelineSpecError(
                f"{path}.destination_table",
                f"lands a table named {name!r}, as {first.removeprefix(ID + '.')} does (in {theirs}); this pipeline "
                f"ingests {why}, and a database pipeline cannot ingest two tables of one name, even from different "
                "source schemas into different destination schemas.",
                "give one of them a different destination_table, or ingest it with a second pipeline.",
            )
        seen[name.lower()] = (path, body)


def _check_foreign_catalog(definition: Mapping[str, Any]) -> None:
    if not definition.get("ingest_from_uc_foreign_catalog"):
        return
    for path, kind, body in _objects(definition):
        if kind == "report":
            raise PipelineSpecError(
                path,
                "is a report; ingestion from a foreign catalog takes table and schema objects only.",
                "list the foreign tables or schemas instead.",
            )
        needed = ("source_catalog", "source_schema") + (("source_table",) if kind == "table" else ())
        for key in needed:
            if not body.get(key):
                raise PipelineSpecError(
                    f"{path}.{key}",
                    "is missing; with ingest_from_uc_foreign_catalog every "
                    f"{kind} names its foreign {', '.join(k.removeprefix('source_') for k in needed)}.",
                    f"set {key} (the foreign catalog's name in Unity Catalog, then schema and table).",
                    condition=f"{MANAGED}.FOREIGN_CATALOG_{kind.upper()}_SPEC_INCOMPLETE",
                )


def _check_source_configurations(definition: Mapping[str, Any]) -> None:
    seen: dict[str, int] = {}
    for index, config in enumerate(definition.get("source_configurations") or []):
        catalog = ((config or {}).get("catalog") or {}).get("source_catalog")
        if catalog is None:
            continue
        if str(catalog).lower() in seen:
            raise PipelineSpecError(
                f"{ID}.source_configurations[{index}].catalog.source_catalog",
                f"configures {catalog!r} again (source_configurations[{seen[str(catalog).lower()]}] does).",
                "keep one configuration per source catalog.",
            )
        seen[str(catalog).lower()] = index


def _check_ingestion(spec: Mapping[str, Any], definition: Mapping[str, Any]) -> None:
    _check_table_configurations(definition)
    field = salesforce_formula_fields(definition)
    why = _not_salesforce(definition)
    if field and why:
        fix = (
            "remove it."
            if "(source_type)" not in why
            else (
                "remove it; if the source is Salesforce, remove source_type instead (the workspace infers it from the "
                "connection)."
            )
        )
        raise PipelineSpecError(field, f"is for Salesforce, and this pipeline ingests {why}.", fix)
    _check_table_names(definition)
    _check_foreign_catalog(definition)
    _check_source_configurations(definition)
    catalog = spec.get("catalog")
    if isinstance(catalog, str) and catalog:
        for path, _kind, body in _objects(definition):
            dest = body.get("destination_catalog")
            if isinstance(dest, str) and dest.lower() != catalog.lower():
                raise PipelineSpecError(
                    f"{path}.destination_catalog",
                    f"is {dest!r}, but the pipeline's catalog is {catalog!r}.",
                    "land every object in the pipeline's catalog, or remove the top-level catalog.",
                    condition=f"{MANAGED}.CATALOG_MISMATCH",
                )


def _check_gateway(spec: Mapping[str, Any]) -> None:
    if spec.get("continuous") is not True:
        raise PipelineSpecError(
            "continuous",
            f"is {spec.get('continuous')!r} on a gateway pipeline; a gateway reads the change log all the time.",
            "set continuous: true.",
            condition=f"{GATEWAY}.CONTINUOUS_MODE_MUST_BE_ENABLED",
        )
    if spec.get("photon") is True:
        raise PipelineSpecError(
            "photon", "is true on a gateway pipeline.", "remove photon.", condition=f"{GATEWAY}.PHOTON_NOT_SUPPORTED"
        )
    edition = spec.get("edition")
    if edition is not None and str(edition).upper() != "ADVANCED":
        raise PipelineSpecError(
            "edition",
            f"is {edition!r} on a gateway pipeline.",
            "remove edition or set ADVANCED.",
            condition=f"{GATEWAY}.EDITION_MUST_BE_ADVANCED",
        )
    channel = spec.get("channel")
    if channel is not None and str(channel).upper() not in ("CURRENT", "PREVIEW"):
        raise PipelineSpecError(
            "channel",
            f"is {channel!r} on a gateway pipeline.",
            "remove channel or set CURRENT or PREVIEW.",
            condition=f"{GATEWAY}.CHANNEL_MUST_BE_CURRENT_OR_PREVIEW",
        )


def check_server_rules(spec: Mapping[str, Any]) -> None:
    """Raise :class:`PipelineSpecError` for the first documented workspace rule the spec breaks."""
    run_as = spec.get("run_as")
    if isinstance(run_as, Mapping) and len([v for v in run_as.values() if v]) > 1:
        raise PipelineSpecError(
            "run_as", f"sets {' and '.join(k for k, v in run_as.items() if v)}.", "set only one identity."
        )
    definition = spec.get(ID)
    if isinstance(definition, Mapping):
        _check_ingestion(spec, definition)
    if isinstance(spec.get("gateway_definition"), Mapping):
        _check_gateway(spec)


#: (path inside the spec, condition) of what cannot change once the pipeline exists. None: no documented condition.
IMMUTABLE: tuple[tuple[tuple[str, ...], str | None], ...] = (
    (("catalog",), f"{MANAGED}.DESTINATION_CATALOG_CANNOT_CHANGE"),
    (("schema",), f"{MANAGED}.DESTINATION_SCHEMA_CANNOT_CHANGE"),
    ((ID, "ingest_from_uc_foreign_catalog"), None),
    ((ID, "connection_name"), f"{MANAGED}.CANNOT_SET_CONNECTION_NAME"),
    ((ID, "ingestion_gateway_id"), f"{MANAGED}.CANNOT_SET_INGESTION_GATEWAY_ID"),
    ((ID, "data_staging_options", "catalog_name"), None),
    ((ID, "data_staging_options", "schema_name"), None),
    (("gateway_definition", "connection_name"), None),
    (("gateway_definition", "gateway_storage_catalog"), None),
    (("gateway_definition", "gateway_storage_schema"), None),
)


def _get(spec: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        spec = spec.get(key) if isinstance(spec, Mapping) else None
    return spec


def _object_key(kind: str, body: Mapping[str, Any]) -> tuple[Any, ...]:
    keys = ("source_url",) if kind == "report" else ("source_catalog", "source_schema", "source_table")
    return (kind, *(str(body.get(k) or "").lower() for k in keys), str(body.get("destination_table") or "").lower())


def check_edit(desired: Mapping[str, Any], live: Mapping[str, Any]) -> None:
    """Raise :class:`PipelineSpecError` when an edit would change what the workspace keeps fixed after creation."""
    for path, condition in IMMUTABLE:
        want, have = _get(desired, path), _get(live, path)
        if want is None or want == have:
            continue
        field = ".".join(path)
        adds = have is None
        if adds and path[0] in ("catalog", "schema"):
            continue  # the server fills these in; stating them later is not a change
        if adds and path[-1] == "ingest_from_uc_foreign_catalog" and want is False:
            continue
        if not adds and path[0] == ID and path[-1] in ("connection_name", "ingestion_gateway_id"):
            continue  # the workspace refuses to add these (CANNOT_SET_*); a recreated gateway's new id is fine
        raise PipelineSpecError(
            field,
            f"would {'be added' if adds else f'change from {have!r}'} to {want!r} on the existing pipeline; "
            "it cannot change after creation.",
            f"keep {have!r}, or create a new pipeline (a new name) with the new value."
            if not adds
            else "create a new pipeline (a new name) with it.",
            condition=condition,
        )
    live_filters = {
        _object_key(kind, body): (body.get("table_configuration") or {}).get("row_filter")
        for _p, kind, body in _objects(live.get(ID) or {})
    }
    for object_path, kind, body in _objects(desired.get(ID) or {}):
        key = _object_key(kind, body)
        if key not in live_filters:
            continue  # a new object may have any row filter
        want = (body.get("table_configuration") or {}).get("row_filter")
        if want != live_filters[key]:
            raise PipelineSpecError(
                f"{object_path}.table_configuration.row_filter",
                f"would change from {live_filters[key]!r} to {want!r}; a table's row filter cannot change.",
                "keep the row filter, or ingest the table into a new destination table with the new filter.",
            )


def check_before_request(spec: Mapping[str, Any], hook: Any) -> None:
    """The one rule that needs a read first: ``salesforce_include_formula_fields`` needs a Salesforce connection.

    Only a GET of the connection, before any create or edit; a missing connection is left for the workspace to report.
    """
    definition = spec.get(ID)
    if not isinstance(definition, Mapping) or not definition.get("connection_name"):
        return
    if not salesforce_formula_fields(definition):
        return
    from databricks.sdk.errors import NotFound

    try:
        connection = hook.run(operations.get_connection(definition["connection_name"]))
    except NotFound:
        return
    check_salesforce_connection(spec, connection.get("connection_type"))
