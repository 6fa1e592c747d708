"""OpenLineage for ingestion pipelines: source objects in, Unity Catalog tables out.

Used by the operators' ``get_openlineage_facets_on_complete``. apache-airflow-providers-openlineage is optional
(``pip install airflow-provider-lakeflow[openlineage]``): without it, nothing here is imported and the methods return
None. Names follow OpenLineage's conventions for Databricks: namespace ``databricks://<workspace host>`` and name
``catalog.schema.table``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse


@dataclass(frozen=True)
class LineageDataset:
    namespace: str
    name: str


def workspace_namespace(host: str) -> str:
    return f"databricks://{urlparse(host).netloc or host}"


def _source_namespace(definition: dict) -> str:
    source_type = str(definition.get("source_type") or "lakeflow-connect").lower()
    if definition.get("connection_name"):
        return f"{source_type}://{definition['connection_name']}"
    return f"{source_type}://gateway/{definition.get('ingestion_gateway_id')}"


def _dotted(*parts: Any) -> str:
    return ".".join(str(p) for p in parts if p)


def datasets(
    spec: dict, host: str, landed: Iterable[str] | None = None
) -> tuple[list[LineageDataset], list[LineageDataset]]:
    """Inputs and outputs of an ingestion pipeline's spec; with ``landed``, only objects that landed those tables."""
    definition = spec.get("ingestion_definition") or {}
    source_ns = _source_namespace(definition)
    target_ns = workspace_namespace(host)
    landed_set = {t.lower() for t in landed} if landed is not None else None
    inputs: list[LineageDataset] = []
    outputs: list[LineageDataset] = []
    for obj in definition.get("objects") or []:
        for kind in ("table", "schema", "report"):
            body = obj.get(kind)
            if not body:
                continue
            if kind == "table":
                source = _dotted(body.get("source_catalog"), body.get("source_schema"), body.get("source_table"))
                table = body.get("destination_table") or body.get("source_table")
                targets = [_dotted(body.get("destination_catalog"), body.get("destination_schema"), table)]
            elif kind == "report":
                source = body.get("source_url", "")
                table = body.get("destination_table") or source.rstrip("/").rsplit("/", 1)[-1]
                targets = [_dotted(body.get("destination_catalog"), body.get("destination_schema"), table)]
            else:
                source = _dotted(body.get("source_catalog"), body.get("source_schema"))
                prefix = _dotted(body.get("destination_catalog"), body.get("destination_schema")).lower() + "."
                # A schema object lands tables the spec does not name: take them from what landed, when known.
                targets = sorted(t for t in (landed_set or ()) if t.startswith(prefix))
            if landed_set is not None:
                targets = [t for t in targets if t.lower() in landed_set]
                if not targets:
                    continue
            inputs.append(LineageDataset(source_ns, source))
            outputs.extend(LineageDataset(target_ns, t) for t in targets)
    return inputs, outputs


def operator_lineage(
    spec: dict,
    host: str,
    landed: Iterable[str] | None = None,
    schemas: Mapping[str, list[tuple[str, str]]] | None = None,
) -> Any:
    """An ``OperatorLineage`` for the OpenLineage provider, or None when it is not installed.

    ``schemas`` (columns per destination table, from the update's ``flow_definition`` events) adds a schema facet to
    the outputs whose columns are known.
    """
    try:
        from airflow.providers.openlineage.extractors import OperatorLineage
        from openlineage.client.event_v2 import Dataset
        from openlineage.client.facet_v2 import schema_dataset
    except ImportError:
        return None
    inputs, outputs = datasets(spec, host, landed)
    known = {table.lower(): columns for table, columns in (schemas or {}).items()}

    def facets(name: str) -> dict[str, Any]:
        columns = known.get(name.lower())
        if not columns:
            return {}
        fields = [schema_dataset.SchemaDatasetFacetFields(name=column, type=kind) for column, kind in columns]
        return {"schema": schema_dataset.SchemaDatasetFacet(fields=fields)}

    return OperatorLineage(
        inputs=[Dataset(namespace=d.namespace, name=d.name) for d in inputs],
        outputs=[Dataset(namespace=d.namespace, name=d.name, facets=facets(d.name)) for d in outputs],
    )


def update_lineage(
    hook: Any, pipeline_id: str, update_id: str | None, landed: Iterable[str] | None, schemas: Any = None
) -> Any:
    """The run operator's lineage: the pipeline's sources in, the tables its update landed out (with their columns,
    read from the update's events when this is not the instance that ran the wait)."""
    # not when a DAG file imports asset_uri: loaded when an operator reports lineage
    from airflow_provider_lakeflow.workspace import operations

    spec = hook.run(operations.get_pipeline(pipeline_id)).get("spec") or {}
    if schemas is None and update_id:
        schemas = operations.table_schemas(hook.run(operations.update_events(pipeline_id, update_id)))
    return operator_lineage(spec, hook.host, landed=list(landed) if landed else None, schemas=schemas)


def asset_uri(host: str, table: str) -> str:
    """The Airflow Asset URI of a landed table: ``databricks://<workspace host>/<catalog>/<schema>/<table>``.

    Unity Catalog names are case-insensitive, so the table part is lowercased (and unquoted): however the event log
    or a DAG author spells a table, it is one Asset.
    """
    parts = (part.strip().strip("`").lower() for part in table.split("."))
    return f"{workspace_namespace(host)}/{'/'.join(parts)}"


def publish_table_assets(outlet_events: Any, alias: str, host: str, metrics: Mapping[str, Mapping[str, Any]]) -> None:
    """One Asset event per table an update landed, through the ``AssetAlias`` the operator declared at parse time."""
    from airflow.providers.common.compat.assets import Asset, AssetAlias  # at run time: Airflow's asset classes

    alias_events = outlet_events[AssetAlias(name=alias)]
    for table, values in sorted(metrics.items()):
        if values.get("status") in (None, "COMPLETED"):
            alias_events.add(Asset(uri=asset_uri(host, table)), extra={"table": table, **values})
