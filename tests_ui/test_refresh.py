"""How long the views reuse a running update's account: never more reads than the triggerer's polls."""

from __future__ import annotations

from airflow_provider_lakeflow.ui.workspace import refresh_seconds


def test_running_update_is_read_at_most_once_per_poll_interval():
    assert refresh_seconds(2) == 5.0  # a fast-polling task: still at most one read per 5 s
    assert refresh_seconds(30) == 30.0
    assert refresh_seconds(600) == 600.0  # a slow poller: the page is no busier than the triggerer
    assert refresh_seconds(None) == 30.0  # waiting in its worker: the operators' default interval
