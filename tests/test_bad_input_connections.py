"""Bad connection arguments: each rejected before any request, with a message naming the field.

Every case asserts the exception type, the field it names, a "Fix:" and that the emulator saw no request at all;
at DAG parse time for literal arguments and again after templating (a value that renders bad). Positive controls keep
the suite honest: valid arguments construct, and one valid run does reach the emulator.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from airflow_provider_lakeflow.connection_options import (
    DATABASE_REQUIRED_OPTIONS,
    DATABASE_TYPES,
    UI_ONLY_TYPES,
    ConnectionOptionsError,
    SignInRequiredError,
)
from airflow_provider_lakeflow.operators import LakeflowCreateConnectionOperator
from airflow_provider_lakeflow.sensors import LakeflowConnectionReadySensor

GOOD_OPTIONS = {"host": "db.example.com", "port": "1433", "user": "cdc_reader", "password": "Pa55word-x"}


class FakeTI:
    try_number = 1

    def xcom_push(self, key: str, value: Any) -> None:  # pragma: no cover - never reached in these cases
        raise AssertionError("a rejected task must not push XCom")


def good(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "name": "erp_sqlserver",
        "connection_type": "SQLSERVER",
        "options": copy.deepcopy(GOOD_OPTIONS),
    }
    kwargs.update(overrides)
    return kwargs


def without(key: str, ctype: str) -> dict[str, Any]:
    options = {k: v for k, v in GOOD_OPTIONS.items() if k != key}
    return good(connection_type=ctype, options=options)


def with_option(key: str, value: Any) -> dict[str, Any]:
    return good(options={**GOOD_OPTIONS, key: value})


# (id, operator kwargs, field named in the message)
CASES: list[tuple[str, dict[str, Any], str]] = [
    *[
        (f"{ctype.lower()}-missing-{key}", without(key, ctype), f"'options.{key}'")
        for ctype in DATABASE_TYPES
        for key in DATABASE_REQUIRED_OPTIONS
    ],
    ("empty-host", with_option("host", ""), "'options.host'"),
    ("blank-password", with_option("password", "   "), "'options.password'"),
    ("port-not-a-number", with_option("port", "sql-port"), "'options.port'"),
    ("port-zero", with_option("port", "0"), "'options.port'"),
    ("port-too-big", with_option("port", "70000"), "'options.port'"),
    ("port-negative", with_option("port", -1), "'options.port'"),
    ("unknown-connection-type", good(connection_type="SQL_SERVER"), "'connection_type'"),
    ("unknown-connection-type-enum", good(connection_type="UNKNOWN_CONNECTION_TYPE"), "'connection_type'"),
    ("empty-connection-type", good(connection_type=""), "'connection_type'"),
    ("connection-type-not-a-string", good(connection_type=None), "'connection_type'"),
    ("empty-name", good(name=""), "'name'"),
    ("blank-name", good(name="   "), "'name'"),
    ("name-with-slash", good(name="erp/../other"), "'name'"),
    ("name-with-spaces-around", good(name=" erp "), "'name'"),
    ("name-not-a-string", good(name=42), "'name'"),
    ("options-a-list", good(options=["host", "port"]), "'options'"),
    ("options-not-json", good(options="host=db"), "'options'"),
    ("options-bad-json", good(options='{"host": '), "'options'"),
    ("options-none", good(options=None), "'options'"),
    ("option-value-none", with_option("password", None), "'options.password'"),
    ("option-value-float", with_option("port", 1433.0), "'options.port'"),
    ("option-value-bool", with_option("trustServerCertificate", True), "'options.trustServerCertificate'"),
    ("option-value-list", with_option("host", ["a", "b"]), "'options.host'"),
    ("option-value-dict", with_option("user", {"name": "u"}), "'options.user'"),
    ("option-name-empty", with_option("", "x"), "'options'"),
    ("empty-options-for-http", good(connection_type="HTTP", options={}), "'options'"),
    ("comment-not-a-string", good(comment=5), "'comment'"),
    ("properties-not-strings", good(properties={"team": 7}), "'properties'"),
]
SIGN_IN_CASES = [
    *[(ctype.lower(), good(connection_type=ctype, options={})) for ctype in UI_ONLY_TYPES],
    ("salesforce-lowercase", good(connection_type="salesforce", options={"client_id": "x"})),
    ("servicenow-without-credential", good(connection_type="SERVICENOW", options={"instance_url": "https://x"})),
    ("ga4-without-credential", good(connection_type="GA4_RAW_DATA", options={"property": "p"})),
]


@pytest.fixture
def emulator(lakeflow_emulator: Any) -> Any:
    return lakeflow_emulator


def assert_no_requests(emulator: Any) -> None:
    seen = emulator.requests()
    assert seen == [], [f"{r.method} {r.path}" for r in seen]


def test_there_are_enough_cases() -> None:
    assert len(CASES) + len(SIGN_IN_CASES) >= 15


@pytest.mark.parametrize(("kwargs", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rejected_at_construction(emulator: Any, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConnectionOptionsError) as info:
        LakeflowCreateConnectionOperator(task_id="create", **kwargs)
    message = str(info.value)
    assert f"Connection field {field}" in message
    assert "Fix:" in message
    assert info.value.field == field.strip("'")
    assert_no_requests(emulator)


@pytest.mark.parametrize(("kwargs", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rejected_after_templating(emulator: Any, kwargs: dict[str, Any], field: str) -> None:
    """A valid-looking task whose templated values render bad: refused at execute, before any request."""
    op = LakeflowCreateConnectionOperator(task_id="create", **good())
    for key, value in kwargs.items():  # what rendering would have produced
        setattr(op, key, value)
    with pytest.raises(ConnectionOptionsError) as info:
        op.execute({"ti": FakeTI()})  # type: ignore[arg-type]
    assert f"Connection field {field}" in str(info.value)
    assert_no_requests(emulator)


@pytest.mark.parametrize("kwargs", [c[1] for c in SIGN_IN_CASES], ids=[c[0] for c in SIGN_IN_CASES])
def test_sign_in_types_are_refused_with_the_walkthrough(emulator: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(SignInRequiredError) as info:
        LakeflowCreateConnectionOperator(task_id="create", **kwargs)
    message = str(info.value)
    assert info.value.field == "connection_type"
    assert "OAuth browser sign-in (U2M)" in message
    assert "Catalog > External Data > Connections > Create connection" in message
    assert "sign in to" in message
    assert "LakeflowConnectionReadySensor(task_id=..., connection_name='erp_sqlserver')" in message
    assert_no_requests(emulator)


def test_sign_in_type_is_refused_at_parse_time_even_with_templated_options(emulator: Any) -> None:
    with pytest.raises(SignInRequiredError):
        LakeflowCreateConnectionOperator(
            task_id="create", name="{{ params.n }}", connection_type="HUBSPOT", options="{{ var.json.hubspot }}"
        )
    assert_no_requests(emulator)


def test_templated_parts_are_checked_with_what_is_known(emulator: Any) -> None:
    # The password is templated, but the missing user is known at parse time.
    with pytest.raises(ConnectionOptionsError, match=r"'options\.user'"):
        LakeflowCreateConnectionOperator(
            task_id="create",
            name="erp",
            connection_type="SQLSERVER",
            options={"host": "h", "port": "1433", "password": "{{ conn.erp.password }}"},
        )
    with pytest.raises(ConnectionOptionsError, match=r"'options\.port'"):
        LakeflowCreateConnectionOperator(
            task_id="create",
            name="{{ params.n }}",
            connection_type="MYSQL",
            options={"host": "h", "port": "mysql", "user": "u", "password": "{{ conn.erp.password }}"},
        )
    assert_no_requests(emulator)


def test_update_if_exists_must_be_a_bool(emulator: Any) -> None:
    with pytest.raises(ValueError, match="update_if_exists"):
        LakeflowCreateConnectionOperator(task_id="create", update_if_exists="yes", **good())  # type: ignore[arg-type]
    assert_no_requests(emulator)


SENSOR_CASES = [("empty", ""), ("blank", "  "), ("none", None), ("slash", "a/b"), ("query", "a?b"), ("int", 7)]


@pytest.mark.parametrize("name", [c[1] for c in SENSOR_CASES], ids=[c[0] for c in SENSOR_CASES])
def test_sensor_bad_connection_name(emulator: Any, name: Any) -> None:
    with pytest.raises(ConnectionOptionsError) as info:
        LakeflowConnectionReadySensor(task_id="wait", connection_name=name)
    assert info.value.field == "connection_name"
    assert "Connection field 'connection_name'" in str(info.value)
    sensor = LakeflowConnectionReadySensor(task_id="wait", connection_name="{{ params.n }}")
    sensor.connection_name = name  # rendered bad
    with pytest.raises(ConnectionOptionsError, match="'connection_name'"):
        sensor.execute({"ti": FakeTI()})  # type: ignore[arg-type]
    assert_no_requests(emulator)


# --- positive controls


@pytest.mark.parametrize("ctype", [*DATABASE_TYPES, "sqlserver"])
def test_valid_database_connections_construct(emulator: Any, ctype: str) -> None:
    LakeflowCreateConnectionOperator(task_id="create", **good(connection_type=ctype))
    assert_no_requests(emulator)


def test_valid_variants_construct(emulator: Any) -> None:
    LakeflowCreateConnectionOperator(task_id="a", **good(options={**GOOD_OPTIONS, "port": 1433}))
    LakeflowCreateConnectionOperator(
        task_id="b", **good(options='{"host": "h", "port": "1", "user": "u", "password": "p"}')
    )
    LakeflowCreateConnectionOperator(task_id="c", **good(options="{{ var.json.erp_options }}"))
    LakeflowCreateConnectionOperator(
        task_id="d", **good(connection_type="SERVICENOW", options={"instance_url": "https://x", "password": "p"})
    )
    LakeflowCreateConnectionOperator(
        task_id="e", **good(connection_type="WORKDAY_RAAS", options={"user": "u", "password": "p"})
    )
    LakeflowConnectionReadySensor(task_id="f", connection_name="salesforce_conn")
    assert_no_requests(emulator)


def test_a_valid_connection_does_reach_the_workspace(emulator: Any) -> None:
    op = LakeflowCreateConnectionOperator(task_id="create", **good())
    assert op.execute({"ti": FakeTI()}) == "erp_sqlserver"  # type: ignore[arg-type]
    assert emulator.requests(method="POST", path_regex=r"/unity-catalog/connections$")
