"""Loading and checking pipeline specs before any request, so a mistake costs a parse, not a failed update.

Each rule raises :class:`PipelineSpecError` naming the field (a dotted path) and how to fix it. The rules are the
ones Lakeflow Connect enforces server-side (and a few it documents), checked here first so that nothing is created
half-way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from airflow_provider_lakeflow.spec.errors import PipelineSpecError
from airflow_provider_lakeflow.spec.fields import check_fields
from airflow_provider_lakeflow.spec.server_rules import OBJECT_KINDS, check_server_rules

MAX_OBJECTS = 250


def load_spec(spec: Any, base_dir: str | None = None) -> dict[str, Any]:
    """A spec given as a dict, a JSON string, or a path to a ``.json``, ``.yml`` or ``.yaml`` file.

    A relative path is looked up in ``base_dir`` (the operator passes its DAG file's folder) and then in the
    working directory.
    """
    if isinstance(spec, Mapping):
        return json.loads(json.dumps(spec))  # a deep, JSON-clean copy: the operator's attribute stays untouched
    if not isinstance(spec, str) or not spec.strip():
        raise PipelineSpecError(
            "spec",
            f"expected a dict, a JSON string or a file path, got {type(spec).__name__}.",
            "pass the pipeline body as for `databricks pipelines create --json`.",
        )
    text = spec.strip()
    if text.startswith("{"):
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise PipelineSpecError("spec", f"is not valid JSON ({exc}).", "check the JSON syntax.") from None
    elif text.lower().endswith((".json", ".yml", ".yaml")):
        if base_dir and not os.path.isabs(text) and os.path.isfile(os.path.join(base_dir, text)):
            text = os.path.join(base_dir, text)
        if not os.path.isfile(text):
            raise PipelineSpecError(
                "spec",
                f"file '{text}' does not exist.",
                "give an absolute path, or a path relative to the DAG file's folder.",
            )
        with open(text, encoding="utf-8") as handle:
            if text.lower().endswith(".json"):
                try:
                    loaded = json.load(handle)
                except ValueError as exc:
                    raise PipelineSpecError(
                        "spec", f"file '{text}' is not valid JSON ({exc}).", "check the file's syntax."
                    ) from None
            else:
                import yaml

                try:
                    loaded = yaml.safe_load(handle)
                except yaml.YAMLError as exc:
                    raise PipelineSpecError(
                        "spec", f"file '{text}' is not valid YAML ({exc}).", "check the file's syntax."
                    ) from None
    else:
        raise PipelineSpecError(
            "spec",
            "a string spec must be JSON (starting with '{') or a .json/.yml/.yaml path.",
            "pass a dict, a JSON object, or a file path with one of those endings.",
        )
    if not isinstance(loaded, dict):
        raise PipelineSpecError(
            "spec", f"must be an object, got {type(loaded).__name__}.", "write the pipeline body as a JSON/YAML object."
        )
    return loaded


def _require_str(spec: Mapping, key: str, path: str, fix: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PipelineSpecError(f"{path}{key}", "is missing or empty.", fix)
    return value


def _check_table_configuration(config: Any, path: str) -> None:
    if config is None:
        return
    if not isinstance(config, Mapping):
        raise PipelineSpecError(path, "must be an object.", 'write it as {"scd_type": "SCD_TYPE_1", ...}.')
    # Enum values (scd_type, connector_type, ...) were checked with the fields (spec_fields): the table's and, for a
    # newer databricks-sdk, its own.
    if config.get("include_columns") and config.get("exclude_columns"):
        raise PipelineSpecError(
            f"{path}.include_columns",
            "is set together with exclude_columns.",
            "set only one of include_columns and exclude_columns.",
        )
    if config.get("storage_mode") is not None and config.get("scd_type") is not None:
        raise PipelineSpecError(
            f"{path}.storage_mode",
            "is set together with scd_type.",
            "set only one: file sources take storage_mode, the other connectors scd_type.",
        )
    if config.get("clustering_columns") and config.get("enable_auto_clustering"):
        raise PipelineSpecError(
            f"{path}.clustering_columns", "is set together with enable_auto_clustering.", "set only one of the two."
        )
    for key in ("primary_keys", "sequence_by", "include_columns", "exclude_columns"):
        value = config.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) and v for v in value)):
            raise PipelineSpecError(f"{path}.{key}", "must be a list of column names.", 'write it as ["col_a", ...].')
    qb = config.get("query_based_connector_config")
    if qb is not None:
        cursors = qb.get("cursor_columns") if isinstance(qb, Mapping) else None
        if not cursors or not isinstance(cursors, list) or not all(isinstance(c, str) and c for c in cursors):
            raise PipelineSpecError(
                f"{path}.query_based_connector_config.cursor_columns",
                "is missing or empty.",
                'name the column(s) whose values only grow, e.g. ["updated_at"].',
            )


def file_source_url(body: Mapping) -> str | None:
    """The folder or drive URL of a file source (SharePoint, Google Drive, OneDrive), from its connector options."""
    options = body.get("connector_options")
    for value in options.values() if isinstance(options, Mapping) else ():
        if isinstance(value, Mapping) and isinstance(value.get("url"), str) and value["url"]:
            return str(value["url"])
    return None


def destination_table(kind: str, body: Mapping) -> str | None:
    """The table an object lands in, when the spec says (schema objects land many tables: None)."""
    if kind == "schema":
        return None
    name = body.get("destination_table") or (body.get("source_table") if kind == "table" else None)
    if not name:
        return None
    return f"{body.get('destination_catalog')}.{body.get('destination_schema')}.{name}".lower()


def _check_ingestion(definition: Any, spec: Mapping) -> None:
    path = "ingestion_definition"
    if not isinstance(definition, Mapping):
        raise PipelineSpecError(path, "must be an object.", "see the Lakeflow Connect pipeline spec.")
    if spec.get("libraries"):
        raise PipelineSpecError(
            "libraries",
            "is set beside ingestion_definition.",
            "remove 'libraries': managed ingestion pipelines have no notebooks or files.",
        )
    if spec.get("continuous"):
        raise PipelineSpecError(
            "continuous",
            "is true on an ingestion pipeline.",
            "remove it (or set false) and schedule runs from Airflow; only gateway pipelines run continuously.",
        )
    has_conn = bool(definition.get("connection_name"))
    has_gateway = bool(definition.get("ingestion_gateway_id"))
    if has_conn and has_gateway:
        raise PipelineSpecError(
            f"{path}.ingestion_gateway_id",
            "is set together with connection_name.",
            "use connection_name for SaaS and query-based sources, ingestion_gateway_id for "
            "database CDC through a gateway; not both.",
        )
    if not has_conn and not has_gateway and not definition.get("ingest_from_uc_foreign_catalog"):
        raise PipelineSpecError(
            f"{path}.connection_name",
            "is missing (and so is ingestion_gateway_id).",
            "name the Unity Catalog connection, or the gateway pipeline's id for database CDC.",
        )
    _check_table_configuration(definition.get("table_configuration"), f"{path}.table_configuration")
    objects = definition.get("objects")
    if not objects or not isinstance(objects, list):
        raise PipelineSpecError(
            f"{path}.objects",
            "is missing or empty.",
            'list at least one {"table": ...}, {"schema": ...} or {"report": ...}.',
        )
    if len(objects) > MAX_OBJECTS:
        raise PipelineSpecError(
            f"{path}.objects",
            f"has {len(objects)} objects; the limit is {MAX_OBJECTS}.",
            "split the objects across several pipelines, or ingest whole schemas.",
        )
    landed: dict[str, int] = {}
    for index, obj in enumerate(objects):
        opath = f"{path}.objects[{index}]"
        kinds = [k for k in OBJECT_KINDS if isinstance(obj, Mapping) and obj.get(k) is not None]
        if len(kinds) != 1:
            problem = "has none of table/schema/report." if not kinds else f"has several of {'/'.join(kinds)}."
            raise PipelineSpecError(opath, problem, "give each object exactly one of 'table', 'schema' or 'report'.")
        kind = kinds[0]
        body = obj[kind]
        if not isinstance(body, Mapping):
            raise PipelineSpecError(f"{opath}.{kind}", "must be an object.", "see the Lakeflow Connect spec.")
        for key in ("destination_catalog", "destination_schema"):
            _require_str(body, key, f"{opath}.{kind}.", "name the Unity Catalog catalog and schema to land in.")
        if kind == "table" and file_source_url(body) is None:
            _require_str(body, "source_table", f"{opath}.table.", "name the source table.")
        elif kind == "table" and not body.get("source_table"):
            _require_str(
                body, "destination_table", f"{opath}.table.", "name the table the files land in (or the source_table)."
            )
        if kind == "schema":
            _require_str(body, "source_schema", f"{opath}.schema.", "name the source schema.")
        if kind == "report":
            _require_str(body, "source_url", f"{opath}.report.", "give the report's URL.")
        _check_table_configuration(body.get("table_configuration"), f"{opath}.{kind}.table_configuration")
        table = destination_table(kind, body)
        if table is not None:
            if table in landed:
                raise PipelineSpecError(
                    f"{opath}.{kind}.destination_table",
                    f"lands in {table}, as objects[{landed[table]}] does.",
                    "give one of them a different destination_table.",
                )
            landed[table] = index


def _check_gateway(definition: Any, spec: Mapping) -> None:
    path = "gateway_definition"
    if not isinstance(definition, Mapping):
        raise PipelineSpecError(path, "must be an object.", "see the Lakeflow Connect gateway spec.")
    _require_str(definition, "connection_name", f"{path}.", "name the Unity Catalog connection to the database.")
    for key in ("gateway_storage_catalog", "gateway_storage_schema"):
        _require_str(definition, key, f"{path}.", "name the catalog and schema where the gateway stages changes.")
    if spec.get("libraries"):
        raise PipelineSpecError("libraries", "is set beside gateway_definition.", "remove 'libraries'.")
    if spec.get("serverless"):
        raise PipelineSpecError(
            "serverless",
            "is true on a gateway pipeline.",
            "gateways run on classic compute in your network: remove 'serverless' and give 'clusters' instead.",
        )


def validate_spec(spec: Mapping[str, Any]) -> None:
    """Raise :class:`PipelineSpecError` for the first rule the spec breaks: unknown fields first (a misspelt key
    would otherwise hide the setting the rules below look for), then the shape of the pipeline, then the rules the
    workspace enforces (``spec_rules``)."""
    check_fields(spec)
    _require_str(spec, "name", "", "give the pipeline a name; it is how the operator finds it again.")
    ingestion = spec.get("ingestion_definition")
    gateway = spec.get("gateway_definition")
    if ingestion is not None and gateway is not None:
        raise PipelineSpecError(
            "gateway_definition",
            "is set together with ingestion_definition.",
            "create the gateway and the ingestion pipeline as two pipelines.",
        )
    if ingestion is None and gateway is None:
        raise PipelineSpecError(
            "ingestion_definition",
            "is missing.",
            "a Lakeflow Connect pipeline needs ingestion_definition (or gateway_definition for a database gateway).",
        )
    if ingestion is not None:
        _check_ingestion(ingestion, spec)
    else:
        _check_gateway(gateway, spec)
    tags = spec.get("tags")
    if tags is not None and (not isinstance(tags, Mapping) or len(tags) > 25):
        raise PipelineSpecError("tags", "must be an object with at most 25 entries.", "trim the tags.")
    check_server_rules(spec)


#: Write-only or create-only fields that a GET never returns: left out when comparing with the live spec.
WRITE_ONLY_FIELDS = frozenset({"allow_duplicate_names", "dry_run", "run_as", "parameters"})


def spec_differs(desired: Any, live: Any) -> bool:
    """True when the live spec lacks or contradicts something the desired spec says (server defaults are fine)."""
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return True
        return any(spec_differs(v, live.get(k)) for k, v in desired.items() if v is not None)
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return True
        return any(spec_differs(d, w) for d, w in zip(desired, live, strict=True))
    return bool(desired != live)
