"""Create a Lakeflow Connect pipeline (idempotently: by name).

Importing this module (DAG parsing) loads no databricks-sdk and no aiohttp: those load when a task runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    BaseOperator,
)

from airflow_provider_lakeflow import DEFAULT_CONN_ID
from airflow_provider_lakeflow.operators._common import _HookMixin

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class LakeflowCreateIngestionPipelineOperator(_HookMixin, BaseOperator):
    """Create a Lakeflow Connect pipeline, or bring the one with the same name up to date.

    :param spec: the pipeline body as for ``databricks pipelines create --json``: a dict, a JSON string, or a path
        to a ``.json``/``.yml``/``.yaml`` file, relative to the DAG file's folder or absolute (templated). ``name`` is
        required; it identifies the pipeline. It may also be a Databricks Asset Bundle file with
        ``resources: pipelines: <key>: {...}`` (see docs/bundles.md).
    :param resource_key: the bundle's pipeline to use (required when the bundle file has several; templated).
    :param bundle_variables: values for the bundle's ``${var.<name>}`` references (templated); the file's
        ``variables: <name>: default:`` fill in the rest.
    :param update_if_exists: when a pipeline with that name exists and its spec differs, edit it (default). When
        false, a differing pipeline is left as it is and a warning is logged.
    :param databricks_conn_id: the Airflow connection.

    Returns the ``pipeline_id``; pushes XCom ``pipeline_url``. Every rule of ``airflow_provider_lakeflow.spec.shape`` is
    checked before any request; a literal dict spec is checked when the DAG file is parsed.
    """

    template_fields: Sequence[str] = ("spec", "resource_key", "bundle_variables")
    template_ext: Sequence[str] = ()
    ui_color = "#ff7b46"

    def __init__(
        self,
        *,
        spec: dict[str, Any] | str,
        resource_key: str | None = None,
        bundle_variables: dict[str, Any] | str | None = None,
        update_if_exists: bool = True,
        databricks_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.resource_key = resource_key
        self.bundle_variables = bundle_variables
        self.update_if_exists = update_if_exists
        self.databricks_conn_id = databricks_conn_id
        if isinstance(spec, dict) and "{{" not in json.dumps([spec, resource_key, bundle_variables], default=str):
            self._checked_spec()  # a literal spec fails at DAG parse time, not at run time

    def _checked_spec(self) -> dict[str, Any]:
        # only once there is a spec to check: the checks' tables would cost every DAG file (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.spec.bundles import load_pipeline_spec

        dag = getattr(self, "dag", None) if getattr(self, "has_dag", lambda: False)() else None
        base_dir = os.path.dirname(dag.fileloc) if dag is not None and getattr(dag, "fileloc", None) else None
        return load_pipeline_spec(
            self.spec, base_dir=base_dir, resource_key=self.resource_key, bundle_variables=self.bundle_variables
        )

    def execute(self, context: Context) -> str:
        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.spec.server_rules import check_before_request, check_edit

        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.spec.shape import WRITE_ONLY_FIELDS, spec_differs
        from airflow_provider_lakeflow.workspace import operations

        spec = self._checked_spec()
        hook = self.hook
        check_before_request(spec, hook)
        name = spec["name"]
        matches = hook.run(operations.find_pipelines_by_name(name))
        if len(matches) > 1:
            ids = ", ".join(sorted(p["pipeline_id"] for p in matches))
            raise AirflowFailException(
                f"{len(matches)} pipelines are named '{name}' ({ids}). Fix: delete or rename the duplicates; "
                "this operator identifies a pipeline by its exact name."
            )
        if not matches:
            pipeline_id = hook.run(operations.create_pipeline(spec))
            self.log.info("Created pipeline '%s': %s", name, pipeline_id)
        else:
            pipeline_id = matches[0]["pipeline_id"]
            live = hook.run(operations.get_pipeline(pipeline_id)).get("spec") or {}
            comparable = {k: v for k, v in spec.items() if k not in WRITE_ONLY_FIELDS}
            if not spec_differs(comparable, live):
                self.log.info("Pipeline '%s' (%s) already matches the spec; nothing to do", name, pipeline_id)
            elif self.update_if_exists:
                check_edit(spec, live)
                hook.run(operations.edit_pipeline(pipeline_id, spec))
                self.log.info("Updated pipeline '%s' (%s) to the spec", name, pipeline_id)
            else:
                self.log.warning(
                    "Pipeline '%s' (%s) differs from the spec; left as it is because update_if_exists=False",
                    name,
                    pipeline_id,
                )
        context["ti"].xcom_push(key="pipeline_url", value=operations.pipeline_url(hook.host, pipeline_id))
        self._lineage_input = (spec, hook.host)
        return pipeline_id

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage (with apache-airflow-providers-openlineage installed): the spec's sources and tables."""
        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.lineage import operator_lineage

        lineage_input = getattr(self, "_lineage_input", None)
        if lineage_input is None:
            return None
        spec, host = lineage_input
        return operator_lineage(spec, host)
