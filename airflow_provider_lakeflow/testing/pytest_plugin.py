"""pytest fixtures for running DAGs and hooks against the Lakeflow emulator (registered as a ``pytest11`` plugin).

One emulator serves the whole session (starting it costs ~50 ms); each test gets it reset. The emulator module is
imported inside the fixture so that merely having this plugin installed costs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_lakeflow.testing.emulator.control import LakeflowEmulator

DEFAULT_UPDATE_SECONDS = 1.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "lakeflow_emulator_update_seconds",
        f"Duration of a default emulated pipeline update in the lakeflow_emulator fixture (default "
        f"{DEFAULT_UPDATE_SECONDS}).",
        default=str(DEFAULT_UPDATE_SECONDS),
    )


@pytest.fixture(scope="session")
def lakeflow_emulator_server(pytestconfig: pytest.Config) -> Iterator[LakeflowEmulator]:
    """The session's emulator; prefer ``lakeflow_emulator``, which also resets it and sets the connection."""
    # Here, not at the top: having this plugin installed must not load aiohttp into every pytest run.
    from airflow_provider_lakeflow.testing.emulator.control import LakeflowEmulator

    try:
        seconds = float(pytestconfig.getini("lakeflow_emulator_update_seconds") or DEFAULT_UPDATE_SECONDS)
    except ValueError:  # fixtures imported into a test module without the plugin's ini option registered
        seconds = DEFAULT_UPDATE_SECONDS
    emulator = LakeflowEmulator(update_seconds=seconds).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def lakeflow_emulator(
    lakeflow_emulator_server: LakeflowEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LakeflowEmulator]:
    """A freshly reset emulator, with ``databricks_default`` pointing at it (PAT ``emulator-token``)."""
    lakeflow_emulator_server.reset()
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATABRICKS_DEFAULT",
        json.dumps({"conn_type": "lakeflow", "host": lakeflow_emulator_server.url, "password": "emulator-token"}),
    )
    yield lakeflow_emulator_server


@pytest.fixture
def lakeflow_emulator_m2m_conn(lakeflow_emulator: LakeflowEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """Also defines ``databricks_m2m``: OAuth M2M with the emulator's service principal. Returns the conn id."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATABRICKS_M2M",
        json.dumps(
            {
                "conn_type": "lakeflow",
                "host": lakeflow_emulator.url,
                "login": "emulator-client",
                "password": "emulator-secret",
            }
        ),
    )
    return "databricks_m2m"
