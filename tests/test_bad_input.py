"""Bad specs, bad operator arguments and bad connections: each rejected before any request, naming the field.

Every case asserts the exception type, a substring naming the offending field, and that the emulator saw no request at
all. Positive controls (valid specs and arguments that pass, a valid .yml spec that creates a pipeline) keep the suite
honest: a validator that rejected everything would fail them.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_provider_lakeflow._engine.auth import ConnectionConfigError
from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook
from airflow_provider_lakeflow.operators import (
    LakeflowCreateIngestionPipelineOperator,
    LakeflowDeletePipelineOperator,
    LakeflowRunPipelineOperator,
    LakeflowStopPipelineOperator,
)
from airflow_provider_lakeflow.sensors import LakeflowPipelineUpdateSensor
from airflow_provider_lakeflow.spec.errors import PipelineSpecError
from airflow_provider_lakeflow.spec.shape import load_spec, validate_spec
from airflow_provider_lakeflow.triggers import LakeflowPipelineUpdateTrigger
from airflow_provider_lakeflow.workspace import operations

# --- helpers


class FakeTI:
    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def table(src: str, dest: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {
        "source_schema": "objects",
        "source_table": src,
        "destination_catalog": "main",
        "destination_schema": "sales",
        **extra,
    }
    if dest:
        body["destination_table"] = dest
    return {"table": body}


def saas_spec() -> dict[str, Any]:
    return {
        "name": "bad-input-saas",
        "serverless": True,
        "ingestion_definition": {
            "connection_name": "salesforce_conn",
            "table_configuration": {"scd_type": "SCD_TYPE_1"},
            "objects": [table("Account", "account"), table("Opportunity", "opportunity")],
        },
    }


def gateway_spec() -> dict[str, Any]:
    return {
        "name": "bad-input-gateway",
        "continuous": True,
        "gateway_definition": {
            "connection_name": "sqlserver_conn",
            "gateway_storage_catalog": "main",
            "gateway_storage_schema": "staging",
        },
    }


def query_based_spec() -> dict[str, Any]:
    spec = saas_spec()
    spec["ingestion_definition"]["connection_name"] = "pg_conn"
    spec["ingestion_definition"]["connector_type"] = "QUERY_BASED"
    spec["ingestion_definition"]["objects"] = [
        table("orders", table_configuration={"query_based_connector_config": {"cursor_columns": ["updated_at"]}})
    ]
    return spec


def assert_no_requests(emulator: Any) -> None:
    seen = emulator.requests()
    assert seen == [], [f"{r.method} {r.path}" for r in seen]


def _obj(spec: dict, i: int = 0) -> dict:
    return spec["ingestion_definition"]["objects"][i]


def _set(path: list[Any], value: Any, base: Callable[[], dict] = saas_spec) -> Callable[[], dict]:
    def make() -> dict:
        spec = base()
        node: Any = spec
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return spec

    return make


def _delete(path: list[Any], base: Callable[[], dict] = saas_spec) -> Callable[[], dict]:
    def make() -> dict:
        spec = base()
        node: Any = spec
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
        return spec

    return make


def _objects(objects: list[Any]) -> Callable[[], dict]:
    return _set(["ingestion_definition", "objects"], objects)


ID = "ingestion_definition"
OBJ0 = f"{ID}.objects[0]"

# (case id, spec factory, field the message must name)
SPEC_CASES: list[tuple[str, Callable[[], dict], str]] = [
    ("libraries-beside-ingestion", _set(["libraries"], [{"notebook": {"path": "/x"}}]), "'libraries'"),
    ("continuous-true", _set(["continuous"], True), "'continuous'"),
    ("no-objects-empty", _objects([]), f"'{ID}.objects'"),
    ("no-objects-key", _delete([ID, "objects"]), f"'{ID}.objects'"),
    ("objects-not-a-list", _objects({"table": {}}), f"'{ID}.objects'"),
    ("251-objects", _objects([table(f"t{i}") for i in range(251)]), f"'{ID}.objects'"),
    ("object-with-a-misspelt-kind", _objects([{"tabel": {"source_table": "x"}}]), f"'{OBJ0}.tabel'"),
    ("object-empty", _objects([{}]), f"'{OBJ0}'"),
    (
        "object-table-and-schema",
        _objects(
            [{**table("a"), "schema": {"source_schema": "s", "destination_catalog": "main", "destination_schema": "x"}}]
        ),
        f"'{OBJ0}'",
    ),
    (
        "object-table-and-report",
        _objects(
            [
                {
                    **table("a"),
                    "report": {"source_url": "https://x/r", "destination_catalog": "main", "destination_schema": "x"},
                }
            ]
        ),
        f"'{OBJ0}'",
    ),
    (
        "missing-destination-catalog",
        _delete([ID, "objects", 0, "table", "destination_catalog"]),
        f"'{OBJ0}.table.destination_catalog'",
    ),
    (
        "missing-destination-schema",
        _delete([ID, "objects", 0, "table", "destination_schema"]),
        f"'{OBJ0}.table.destination_schema'",
    ),
    (
        "empty-destination-schema",
        _set([ID, "objects", 0, "table", "destination_schema"], "  "),
        f"'{OBJ0}.table.destination_schema'",
    ),
    (
        "schema-object-missing-destination-catalog",
        _objects([{"schema": {"source_schema": "dbo", "destination_schema": "x"}}]),
        f"'{OBJ0}.schema.destination_catalog'",
    ),
    (
        "missing-source-table",
        _delete([ID, "objects", 1, "table", "source_table"]),
        f"'{ID}.objects[1].table.source_table'",
    ),
    (
        "report-missing-source-url",
        _objects([{"report": {"destination_catalog": "main", "destination_schema": "x"}}]),
        f"'{OBJ0}.report.source_url'",
    ),
    (
        "two-objects-same-destination",
        _objects([table("Account", "acc"), table("Contact", "acc")]),
        f"'{ID}.objects[1].table.destination_table'",
    ),
    (
        "same-destination-by-source-name",
        _objects([table("orders"), table("Other", "orders")]),
        f"'{ID}.objects[1].table.destination_table'",
    ),
    (
        "same-destination-differing-case",
        _objects([table("a", "Orders"), table("b", "orders")]),
        f"'{ID}.objects[1].table.destination_table'",
    ),
    (
        "include-and-exclude-columns-object",
        _objects([table("a", table_configuration={"include_columns": ["x"], "exclude_columns": ["y"]})]),
        f"'{OBJ0}.table.table_configuration.include_columns'",
    ),
    (
        "include-and-exclude-columns-definition",
        _set([ID, "table_configuration"], {"include_columns": ["x"], "exclude_columns": ["y"]}),
        f"'{ID}.table_configuration.include_columns'",
    ),
    (
        "unknown-scd-type-definition",
        _set([ID, "table_configuration", "scd_type"], "SCD_TYPE_3"),
        f"'{ID}.table_configuration.scd_type'",
    ),
    (
        "unknown-scd-type-object",
        _objects([table("a", table_configuration={"scd_type": "scd_type_1"})]),
        f"'{OBJ0}.table.table_configuration.scd_type'",
    ),
    (
        "clustering-and-auto-clustering",
        _objects([table("a", table_configuration={"clustering_columns": ["x"], "enable_auto_clustering": True})]),
        f"'{OBJ0}.table.table_configuration.clustering_columns'",
    ),
    (
        "primary-keys-not-a-list",
        _objects([table("a", table_configuration={"primary_keys": "Id"})]),
        f"'{OBJ0}.table.table_configuration.primary_keys'",
    ),
    (
        "table-configuration-not-object",
        _set([ID, "table_configuration"], ["SCD_TYPE_1"]),
        f"'{ID}.table_configuration'",
    ),
    ("connection-name-and-gateway-id", _set([ID, "ingestion_gateway_id"], "gw-123"), f"'{ID}.ingestion_gateway_id'"),
    ("neither-connection-nor-gateway", _delete([ID, "connection_name"]), f"'{ID}.connection_name'"),
    ("unknown-connector-type", _set([ID, "connector_type"], "CDC_AND_QUERY"), f"'{ID}.connector_type'"),
    (
        "query-based-without-cursor-columns",
        _set(
            [ID, "objects", 0, "table", "table_configuration", "query_based_connector_config"],
            {},
            base=query_based_spec,
        ),
        f"'{OBJ0}.table.table_configuration.query_based_connector_config.cursor_columns'",
    ),
    (
        "query-based-empty-cursor-columns",
        _set(
            [ID, "objects", 0, "table", "table_configuration", "query_based_connector_config", "cursor_columns"],
            [],
            base=query_based_spec,
        ),
        f"'{OBJ0}.table.table_configuration.query_based_connector_config.cursor_columns'",
    ),
    (
        "query-based-cursor-not-names",
        _set(
            [ID, "objects", 0, "table", "table_configuration", "query_based_connector_config", "cursor_columns"],
            "updated_at",
            base=query_based_spec,
        ),
        f"'{OBJ0}.table.table_configuration.query_based_connector_config.cursor_columns'",
    ),
    (
        "gateway-without-storage-catalog",
        _delete(["gateway_definition", "gateway_storage_catalog"], base=gateway_spec),
        "'gateway_definition.gateway_storage_catalog'",
    ),
    (
        "gateway-without-storage-schema",
        _delete(["gateway_definition", "gateway_storage_schema"], base=gateway_spec),
        "'gateway_definition.gateway_storage_schema'",
    ),
    (
        "gateway-without-connection",
        _delete(["gateway_definition", "connection_name"], base=gateway_spec),
        "'gateway_definition.connection_name'",
    ),
    ("gateway-with-libraries", _set(["libraries"], [{"file": {"path": "/x.py"}}], base=gateway_spec), "'libraries'"),
    (
        "gateway-and-ingestion",
        _set(["gateway_definition"], gateway_spec()["gateway_definition"]),
        "'gateway_definition'",
    ),
    ("no-definition", _delete([ID]), "'ingestion_definition'"),
    ("ingestion-definition-not-object", _set([ID], "salesforce_conn"), "'ingestion_definition'"),
    ("missing-name", _delete(["name"]), "'name'"),
    ("empty-name", _set(["name"], ""), "'name'"),
    ("name-not-a-string", _set(["name"], 42), "'name'"),
    ("too-many-tags", _set(["tags"], {f"k{i}": "v" for i in range(26)}), "'tags'"),
]


@pytest.fixture
def emulator(lakeflow_emulator: Any) -> Any:
    lakeflow_emulator.set_default_script(phase_seconds=0.05)
    return lakeflow_emulator


# --- specs: dicts


@pytest.mark.parametrize(("make", "field"), [c[1:] for c in SPEC_CASES], ids=[c[0] for c in SPEC_CASES])
def test_bad_spec_dict_rejected_at_construction(emulator: Any, make: Callable[[], dict], field: str) -> None:
    spec = make()
    with pytest.raises(PipelineSpecError) as info:
        LakeflowCreateIngestionPipelineOperator(task_id="create", spec=spec)
    message = str(info.value)
    assert field in message
    assert "Fix:" in message
    assert info.value.field == field.strip("'")
    assert_no_requests(emulator)


@pytest.mark.parametrize(("make", "field"), [c[1:] for c in SPEC_CASES], ids=[c[0] for c in SPEC_CASES])
def test_bad_spec_as_json_string_rejected_at_execute(emulator: Any, make: Callable[[], dict], field: str) -> None:
    """The same rules for a JSON string spec, which is only loaded (and checked) when the task runs."""
    op = LakeflowCreateIngestionPipelineOperator(task_id="create", spec=json.dumps(make()))
    with pytest.raises(PipelineSpecError, match="Fix:") as info:
        op.execute({"ti": FakeTI()})
    assert field in str(info.value)
    assert_no_requests(emulator)


def test_spec_dict_is_not_mutated_by_validation() -> None:
    spec = saas_spec()
    before = copy.deepcopy(spec)
    LakeflowCreateIngestionPipelineOperator(task_id="create", spec=spec)
    assert spec == before


# --- specs: strings, files


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


STRING_CASES: list[tuple[str, Callable[[Path], Any], str, str]] = [
    ("bad-json-string", lambda p: '{"name": "x", "ingestion_definition": ', "'spec'", "not valid JSON"),
    ("json-string-not-object", lambda p: '{"name"}', "'spec'", "not valid JSON"),
    ("missing-json-file", lambda p: str(p / "nope.json"), "'spec'", "does not exist"),
    ("missing-yaml-file", lambda p: str(p / "nope.yaml"), "'spec'", "does not exist"),
    ("yaml-file-is-a-list", lambda p: _write(p, "list.yml", "- name: a\n- name: b\n"), "'spec'", "must be an object"),
    ("yaml-file-is-a-scalar", lambda p: _write(p, "scalar.yaml", "just a string\n"), "'spec'", "must be an object"),
    ("yaml-file-empty", lambda p: _write(p, "empty.yml", ""), "'spec'", "must be an object"),
    ("yaml-file-bad-syntax", lambda p: _write(p, "broken.yml", "name: [unclosed\n"), "'spec'", "not valid YAML"),
    (
        "json-file-bad-syntax",
        lambda p: _write(p, "broken.json", "{'name': 'single quotes'}"),
        "'spec'",
        "not valid JSON",
    ),
    ("json-file-is-a-list", lambda p: _write(p, "list.json", "[1, 2]"), "'spec'", "must be an object"),
    ("string-neither-json-nor-path", lambda p: "my-pipeline.txt", "'spec'", ".json/.yml/.yaml"),
    ("blank-string", lambda p: "   ", "'spec'", "expected a dict"),
    ("a-list", lambda p: [saas_spec()], "'spec'", "got list"),
    ("a-number", lambda p: 42, "'spec'", "got int"),
    (
        "yaml-file-breaking-a-rule",
        lambda p: _write(p, "continuous.yaml", yaml.safe_dump({**saas_spec(), "continuous": True})),
        "'continuous'",
        "is true on an ingestion pipeline",
    ),
    (
        "json-file-breaking-a-rule",
        lambda p: _write(p, "dupes.json", json.dumps(_objects([table("a", "x"), table("b", "x")])())),
        "destination_table'",
        "as objects[0] does",
    ),
]


@pytest.mark.parametrize(("make", "field", "detail"), [c[1:] for c in STRING_CASES], ids=[c[0] for c in STRING_CASES])
def test_bad_spec_string_or_file_rejected_at_execute(
    emulator: Any, tmp_path: Path, make: Callable[[Path], Any], field: str, detail: str
) -> None:
    op = LakeflowCreateIngestionPipelineOperator(task_id="create", spec=make(tmp_path))
    with pytest.raises(PipelineSpecError) as info:
        op.execute({"ti": FakeTI()})
    assert field in str(info.value)
    assert detail in str(info.value)
    assert_no_requests(emulator)


def test_templated_spec_that_renders_bad_is_rejected_before_any_request(emulator: Any) -> None:
    spec = saas_spec()
    spec["name"] = "{{ params.name }}"
    spec["ingestion_definition"]["table_configuration"]["scd_type"] = "{{ params.scd }}"
    op = LakeflowCreateIngestionPipelineOperator(task_id="create", spec=spec)  # templated: not checked at parse
    context: dict[str, Any] = {"params": {"name": "ok-name", "scd": "SCD_TYPE_9"}, "ti": FakeTI()}
    op.render_template_fields(context)
    with pytest.raises(PipelineSpecError) as info:
        op.execute(context)
    assert "'ingestion_definition.table_configuration.scd_type'" in str(info.value)
    assert "SCD_TYPE_9" in str(info.value)
    assert_no_requests(emulator)


def test_templated_spec_path_that_renders_missing_is_rejected(emulator: Any, tmp_path: Path) -> None:
    op = LakeflowCreateIngestionPipelineOperator(task_id="create", spec="{{ params.spec_file }}")
    context: dict[str, Any] = {"params": {"spec_file": str(tmp_path / "absent.yaml")}, "ti": FakeTI()}
    op.render_template_fields(context)
    with pytest.raises(PipelineSpecError, match="does not exist") as info:
        op.execute(context)
    assert info.value.field == "spec"
    assert_no_requests(emulator)


# --- specs: positive controls


@pytest.mark.parametrize(
    "make",
    [
        saas_spec,
        gateway_spec,
        query_based_spec,
        _objects([table(f"t{i}") for i in range(250)]),
        _set([ID, "ingestion_gateway_id"], "gw-1", base=_delete([ID, "connection_name"])),
        _objects(
            [
                {"schema": {"source_schema": "dbo", "destination_catalog": "main", "destination_schema": "x"}},
                {"schema": {"source_schema": "dbo", "destination_catalog": "main", "destination_schema": "x"}},
            ]
        ),
        _objects(
            [
                {
                    "report": {
                        "source_url": "https://wd/r/1",
                        "destination_catalog": "main",
                        "destination_schema": "x",
                        "destination_table": "r1",
                    }
                }
            ]
        ),
        _set(["continuous"], False),
        _set([ID, "table_configuration"], {"include_columns": ["a"], "exclude_columns": []}),
    ],
    ids=[
        "saas",
        "gateway",
        "query-based",
        "250-objects",
        "gateway-cdc",
        "two-schemas",
        "report",
        "continuous-false",
        "include-with-empty-exclude",
    ],
)
def test_valid_specs_pass_validation(emulator: Any, make: Callable[[], dict]) -> None:
    spec = make()
    validate_spec(spec)
    LakeflowCreateIngestionPipelineOperator(task_id="create", spec=spec)
    LakeflowCreateIngestionPipelineOperator(task_id="create2", spec=json.dumps(spec))._checked_spec()
    assert_no_requests(emulator)


@pytest.mark.parametrize("suffix", [".yml", ".yaml", ".json"])
def test_valid_spec_file_is_accepted_and_creates_the_pipeline(emulator: Any, tmp_path: Path, suffix: str) -> None:
    spec = saas_spec()
    path = tmp_path / f"pipeline{suffix}"
    path.write_text(json.dumps(spec) if suffix == ".json" else yaml.safe_dump(spec))
    assert load_spec(str(path)) == spec
    ti = FakeTI()
    pipeline_id = LakeflowCreateIngestionPipelineOperator(task_id="create", spec=str(path)).execute({"ti": ti})
    assert emulator.pipeline(pipeline_id)["name"] == spec["name"]
    assert ti.xcoms["pipeline_url"].endswith(pipeline_id)
    assert emulator.requests(method="POST", path_regex=r"/api/2\.0/pipelines$")  # the positive control did call


# --- run operator


# (case id, kwargs, field named[, "execute" when only checked once the task runs])
RUN_CASES: list[tuple[Any, ...]] = [
    ("both-ids", {"pipeline_id": "p1", "pipeline_name": "n"}, "pipeline_name"),
    ("neither-id", {}, "pipeline_id nor pipeline_name"),
    ("explicit-none-both", {"pipeline_id": None, "pipeline_name": None}, "pipeline_id nor pipeline_name"),
    # Not checked at parse time (an XComArg is not a string either), but at execute, before any request:
    ("pipeline-id-not-string", {"pipeline_id": 123}, "pipeline_id must be a string", "execute"),
    ("unknown-on-active-update", {"pipeline_id": "p", "on_active_update": "skip"}, "on_active_update"),
    ("on-active-update-case", {"pipeline_id": "p", "on_active_update": "Reuse"}, "on_active_update"),
    ("zero-poll-interval", {"pipeline_id": "p", "poll_interval": 0}, "poll_interval"),
    ("negative-poll-interval", {"pipeline_id": "p", "poll_interval": -5}, "poll_interval"),
    ("string-poll-interval", {"pipeline_id": "p", "poll_interval": "30"}, "poll_interval"),
    ("none-poll-interval", {"pipeline_id": "p", "poll_interval": None}, "poll_interval"),
    ("negative-timeout", {"pipeline_id": "p", "timeout": -1}, "timeout"),
    ("zero-timeout", {"pipeline_id": "p", "timeout": 0}, "timeout"),
    ("negative-timedelta-timeout", {"pipeline_id": "p", "timeout": datetime.timedelta(minutes=-1)}, "timeout"),
    ("bool-timeout", {"pipeline_id": "p", "timeout": True}, "timeout"),
    (
        "full-refresh-with-refresh-selection",
        {"pipeline_id": "p", "full_refresh": True, "refresh_selection": ["a"]},
        "full_refresh",
    ),
    (
        "full-refresh-with-full-selection",
        {"pipeline_id": "p", "full_refresh": True, "full_refresh_selection": ["a"]},
        "full_refresh",
    ),
    ("selection-int", {"pipeline_id": "p", "refresh_selection": 5}, "refresh_selection", "execute"),
    ("selection-dict", {"pipeline_id": "p", "full_refresh_selection": {"a": 1}}, "full_refresh_selection", "execute"),
    ("selection-of-ints", {"pipeline_id": "p", "refresh_selection": [1, 2]}, "refresh_selection", "execute"),
    ("selection-empty-name", {"pipeline_id": "p", "refresh_selection": ["a", ""]}, "refresh_selection"),
    (
        "selection-name-with-space",
        {"pipeline_id": "p", "refresh_selection": ["main.sales.my table"]},
        "refresh_selection",
    ),
    ("selection-bad-json", {"pipeline_id": "p", "refresh_selection": '["a", "b"'}, "refresh_selection"),
    (
        "table-in-both-selections",
        {"pipeline_id": "p", "refresh_selection": ["a", "b"], "full_refresh_selection": ["b"]},
        "both full_refresh_selection and refresh_selection",
    ),
    ("duplicate-in-selection", {"pipeline_id": "p", "full_refresh_selection": ["a", "a"]}, "full_refresh_selection"),
    ("duplicate-in-csv-selection", {"pipeline_id": "p", "refresh_selection": "a, b, a"}, "refresh_selection"),
    ("full-refresh-string", {"pipeline_id": "p", "full_refresh": "true"}, "full_refresh"),
    ("full-refresh-int", {"pipeline_id": "p", "full_refresh": 1}, "full_refresh"),
    ("wait-for-completion-string", {"pipeline_id": "p", "wait_for_completion": "no"}, "wait_for_completion"),
]


@pytest.mark.parametrize(
    ("kwargs", "field", "stage"),
    [(*c[1:3], c[3] if len(c) > 3 else "init") for c in RUN_CASES],
    ids=[c[0] for c in RUN_CASES],
)
def test_run_operator_bad_arguments(emulator: Any, kwargs: dict[str, Any], field: str, stage: str) -> None:
    with pytest.raises(ValueError) as info:
        op = LakeflowRunPipelineOperator(task_id="run", **kwargs)
        assert stage == "execute", "accepted at construction"
        op.execute({"ti": FakeTI(), "params": {}})
    assert field in str(info.value)
    assert_no_requests(emulator)


# (case id, constructor kwargs with templates, params, field named)
TEMPLATED_RUN_CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("id-renders-empty", {"pipeline_id": "{{ params.pid }}"}, {"pid": ""}, "pipeline_id nor pipeline_name"),
    ("name-renders-empty", {"pipeline_name": "{{ params.name }}"}, {"name": ""}, "pipeline_id nor pipeline_name"),
    (
        "selection-renders-duplicates",
        {"pipeline_id": "p", "refresh_selection": "{{ params.sel }}"},
        {"sel": '["a", "a"]'},
        "refresh_selection",
    ),
    (
        "selection-renders-bad-json",
        {"pipeline_id": "p", "refresh_selection": "{{ params.sel }}"},
        {"sel": "[a, b"},
        "refresh_selection",
    ),
    (
        "selection-renders-non-names",
        {"pipeline_id": "p", "full_refresh_selection": "{{ params.sel }}"},
        {"sel": "[1, 2]"},
        "full_refresh_selection",
    ),
    (
        "selection-renders-overlap",
        {"pipeline_id": "p", "refresh_selection": ["a"], "full_refresh_selection": "{{ params.sel }}"},
        {"sel": "a"},
        "both full_refresh_selection and refresh_selection",
    ),
    (
        "selection-renders-with-full-refresh",
        {"pipeline_id": "p", "full_refresh": True, "refresh_selection": "{{ params.sel }}"},
        {"sel": "main.s.t"},
        "full_refresh",
    ),
    (
        "selection-list-item-renders-space",
        {"pipeline_id": "p", "refresh_selection": ["{{ params.sel }}"]},
        {"sel": "my table"},
        "refresh_selection",
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "params", "field"), [c[1:] for c in TEMPLATED_RUN_CASES], ids=[c[0] for c in TEMPLATED_RUN_CASES]
)
def test_run_operator_templated_values_bad_after_rendering(
    emulator: Any, kwargs: dict[str, Any], params: dict[str, Any], field: str
) -> None:
    op = LakeflowRunPipelineOperator(task_id="run", **kwargs)  # fine at parse time
    context: dict[str, Any] = {"params": params, "ti": FakeTI()}
    op.render_template_fields(context)
    with pytest.raises(ValueError) as info:
        op.execute(context)
    assert field in str(info.value)
    assert_no_requests(emulator)


def test_run_operator_positive_controls(emulator: Any) -> None:
    LakeflowRunPipelineOperator(task_id="a", pipeline_id="p")
    LakeflowRunPipelineOperator(
        task_id="b",
        pipeline_name="n",
        on_active_update="cancel",
        poll_interval=0.1,
        timeout=datetime.timedelta(minutes=5),
    )
    LakeflowRunPipelineOperator(task_id="c", pipeline_id="p", refresh_selection=["a"], full_refresh_selection=["b"])
    LakeflowRunPipelineOperator(task_id="d", pipeline_id="p", full_refresh=True, refresh_selection=[])
    op = LakeflowRunPipelineOperator(task_id="e", pipeline_id="{{ params.pid }}", refresh_selection="{{ params.s }}")
    op.render_template_fields({"params": {"pid": "p", "s": '["main.s.a", "main.s.b"]'}})
    assert op._check_arguments(templated=True) == (None, ["main.s.a", "main.s.b"])
    assert_no_requests(emulator)


# --- stop / delete / sensor


OTHER_CASES: list[tuple[str, type, dict[str, Any], str]] = [
    ("stop-both", LakeflowStopPipelineOperator, {"pipeline_id": "p", "pipeline_name": "n"}, "pipeline_name"),
    ("stop-neither", LakeflowStopPipelineOperator, {}, "pipeline_id nor pipeline_name"),
    ("stop-zero-poll", LakeflowStopPipelineOperator, {"pipeline_id": "p", "poll_interval": 0}, "poll_interval"),
    ("delete-both", LakeflowDeletePipelineOperator, {"pipeline_id": "p", "pipeline_name": "n"}, "pipeline_name"),
    ("delete-neither", LakeflowDeletePipelineOperator, {}, "pipeline_id nor pipeline_name"),
    ("sensor-both", LakeflowPipelineUpdateSensor, {"pipeline_id": "p", "pipeline_name": "n"}, "pipeline_name"),
    ("sensor-neither", LakeflowPipelineUpdateSensor, {}, "pipeline_id nor pipeline_name"),
    (
        "sensor-no-success-states",
        LakeflowPipelineUpdateSensor,
        {"pipeline_id": "p", "success_states": ()},
        "success_states",
    ),
    (
        "sensor-overlapping-states",
        LakeflowPipelineUpdateSensor,
        {"pipeline_id": "p", "success_states": ("COMPLETED", "FAILED")},
        "success_states and failure_states",
    ),
]


@pytest.mark.parametrize(("cls", "kwargs", "field"), [c[1:] for c in OTHER_CASES], ids=[c[0] for c in OTHER_CASES])
def test_stop_delete_sensor_bad_arguments(emulator: Any, cls: type, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError) as info:
        cls(task_id="t", **kwargs)
    assert field in str(info.value)
    assert_no_requests(emulator)


@pytest.mark.parametrize(
    ("cls", "method"),
    [
        (LakeflowStopPipelineOperator, "execute"),
        (LakeflowDeletePipelineOperator, "execute"),
        (LakeflowPipelineUpdateSensor, "poke"),
    ],
    ids=["stop", "delete", "sensor"],
)
def test_templated_pipeline_ref_rendering_empty_fails_before_any_request(emulator: Any, cls: type, method: str) -> None:
    op = cls(task_id="t", pipeline_name="{{ params.name }}")
    context: dict[str, Any] = {"params": {"name": ""}, "ti": FakeTI()}
    op.render_template_fields(context)
    with pytest.raises(ValueError, match="pipeline_id nor pipeline_name"):
        getattr(op, method)(context)
    assert_no_requests(emulator)
    op = cls(task_id="t2", pipeline_id=7)  # maybe an XComArg at parse time: checked when the task runs
    with pytest.raises(ValueError, match="pipeline_id must be a string"):
        getattr(op, method)(context)
    assert_no_requests(emulator)


# --- the connection


def _conn(emulator: Any, **fields: Any) -> str:
    return json.dumps({"conn_type": "lakeflow", "host": emulator.url, "password": "emulator-token", **fields})


CONN_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "typo-http-timeout",
        {"extra": {"http_timeout_secs": 5}},
        ["'http_timeout_secs'", "Did you mean 'http_timeout_seconds'"],
    ),
    (
        "typo-retry-timeout",
        {"extra": {"retry_timeout_second": 5}},
        ["'retry_timeout_second'", "Did you mean 'retry_timeout_seconds'"],
    ),
    ("typo-auth-type", {"extra": {"authtype": "pat"}}, ["'authtype'", "Did you mean 'auth_type'"]),
    ("typo-warehouse", {"extra": {"warehouse": "abc"}}, ["'warehouse'", "Did you mean 'warehouse_id'"]),
    ("typo-azure-tenant", {"extra": {"azure_tenant": "t"}}, ["'azure_tenant'", "Did you mean 'azure_tenant_id'"]),
    ("unknown-far-from-everything", {"extra": {"zzzqqq": 1}}, ["'zzzqqq'"]),
    ("extra-not-json", {"extra": "{not json"}, ["'extra'", "not valid JSON"]),
    ("extra-a-list", {"extra": "[1, 2]"}, ["'extra'", "JSON object"]),
    ("retry-timeout-zero", {"extra": {"retry_timeout_seconds": 0}}, ["'retry_timeout_seconds'", "positive"]),
    (
        "http-timeout-not-number",
        {"extra": {"http_timeout_seconds": "soon"}},
        ["'http_timeout_seconds'", "whole number"],
    ),
    ("msi-not-bool", {"extra": {"azure_use_msi": "maybe"}}, ["'azure_use_msi'", "true or false"]),
    ("sp-oauth-without-login", {"extra": {"service_principal_oauth": True}}, ["'service_principal_oauth'", "Login"]),
    ("auth-type-with-unread-password", {"extra": {"auth_type": "databricks-cli"}}, ["auth_type", "password"]),
]


@pytest.mark.parametrize(("fields", "expected"), [c[1:] for c in CONN_CASES], ids=[c[0] for c in CONN_CASES])
def test_bad_connection_fails_before_any_request(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], expected: list[str]
) -> None:
    if isinstance(fields.get("extra"), dict):
        fields = {**fields, "extra": json.dumps(fields["extra"])}
    monkeypatch.setenv("AIRFLOW_CONN_DATABRICKS_DEFAULT", _conn(emulator, **fields))
    with pytest.raises(ConnectionConfigError) as info:
        LakeflowHook().run(operations.get_pipeline("p"))
    for text in expected:
        assert text in str(info.value)
    assert "emulator-token" not in str(info.value)
    assert_no_requests(emulator)


def test_bad_connection_host_scheme(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATABRICKS_DEFAULT",
        json.dumps({"conn_type": "lakeflow", "host": "ftp://example.com", "password": "t"}),
    )
    with pytest.raises(ConnectionConfigError, match="host"):
        LakeflowHook().run(operations.get_pipeline("p"))
    assert_no_requests(emulator)


def test_bad_connection_through_operators_and_trigger(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same connection error out of a task's execute, and as the trigger's "error" event."""
    monkeypatch.setenv("AIRFLOW_CONN_DATABRICKS_DEFAULT", _conn(emulator, extra=json.dumps({"retry_timeout_secs": 3})))
    with pytest.raises(ConnectionConfigError, match="Did you mean 'retry_timeout_seconds'"):
        LakeflowDeletePipelineOperator(task_id="d", pipeline_id="p").execute({"ti": FakeTI()})
    with pytest.raises(ConnectionConfigError, match="'retry_timeout_secs'"):
        LakeflowCreateIngestionPipelineOperator(task_id="c", spec=saas_spec()).execute({"ti": FakeTI()})

    async def first_event() -> dict[str, Any]:
        trigger = LakeflowPipelineUpdateTrigger(pipeline_id="p", update_id="u", poll_interval=0.05)
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    event = asyncio.run(first_event())
    assert event["status"] == "error"
    assert "'retry_timeout_secs'" in event["message"]
    assert "retry_timeout_seconds" in event["message"]
    assert_no_requests(emulator)


def test_good_connection_positive_control(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATABRICKS_DEFAULT",
        _conn(
            emulator,
            extra=json.dumps(
                {"http_timeout_seconds": 5, "retry_timeout_seconds": 5, "warehouse_id": "w", "retry_limit": 3}
            ),
        ),
    )
    ok, message = LakeflowHook().test_connection()
    assert ok, message
    assert emulator.requests(path_regex="scim/v2/Me")


def test_templated_bad_selection_fails_the_task_in_a_dag_run(
    airflow_db: Any, emulator: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    """Through real Airflow: the DAG parses, the rendered selection is bad, the task fails, no request is made."""
    from conftest import load_dag

    dag = load_dag("faults_bad_input_templated")
    dag_run = dag.test(run_conf={"pipeline_id": "p-1", "tables": '["main.sales.a", "main.sales.a"]'})
    assert dag_run.state == "failed"
    captured = capsys.readouterr()
    assert "refresh_selection names ['main.sales.a'] more than once" in caplog.text + captured.out + captured.err
    assert_no_requests(emulator)
