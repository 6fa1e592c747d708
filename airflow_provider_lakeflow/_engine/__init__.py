"""The request engine: what turns an operation's requests into HTTP calls, on the sync and the async path alike.

``retrying`` plans the steps (send, sleep, refresh the token) with the one retry loop and classifies failures;
``responses`` maps a response to its JSON or to databricks-sdk's exception; ``transport`` sends over requests or
aiohttp; ``auth`` turns an Airflow connection into databricks-sdk settings; ``budget`` is the per-workspace request
budget; ``poll_schedule`` aligns polls' pauses so that waits on one subject share a request. Private: only
``hooks.lakeflow`` drives it.
"""
