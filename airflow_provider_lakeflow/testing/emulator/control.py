"""Driving the emulator: in process (``LakeflowEmulator``) or over HTTP (``EmulatorClient``), with one interface.

Both inherit ``ControlMethods`` (``control_ops.py``: every control operation declared once) and forward each call to
``_call(op, **kwargs)``. The in-process class calls ``Workspace.<op>`` directly (thread-safe: the workspace locks); the
client POSTs the same kwargs to ``/__emulator__/<op>``, whose route calls the very same ``Workspace.<op>``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from airflow_provider_lakeflow.testing.emulator.control_ops import ControlMethods
from airflow_provider_lakeflow.testing.emulator.errors import ApiError
from airflow_provider_lakeflow.testing.emulator.server.app import CONTROL_PREFIX, EmulatorServer
from airflow_provider_lakeflow.testing.emulator.workspace import Workspace

DEFAULT_TOKEN = "emulator-token"
DEFAULT_CLIENT_ID = "emulator-client"
DEFAULT_CLIENT_SECRET = "emulator-secret"


class LakeflowEmulator(ControlMethods):
    """The emulator in this process: ``start()`` serves from a background thread with its own event loop;
    ``async with`` (or ``start_async()``) serves inside the running loop instead.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: tuple[str, ...] | list[str] = (DEFAULT_TOKEN,),
        clients: dict[str, str] | None = None,
        update_seconds: float = 3.0,
        now: Callable[[], float] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"now": now} if now is not None else {}
        self.workspace = Workspace(
            tokens=tuple(tokens),
            clients=clients if clients is not None else {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET},
            update_seconds=update_seconds,
            **kwargs,
        )
        self._server = EmulatorServer(self.workspace, host, port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _call(self, op: str, **kwargs: Any) -> Any:
        return getattr(self.workspace, op)(**kwargs)

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def port(self) -> int:
        return self._server.port

    # ---- background thread
    def start(self) -> LakeflowEmulator:
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._server.start())
            except BaseException as e:
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._server.stop())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="lakeflow-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = self._loop = None
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = self._loop = None

    def __enter__(self) -> LakeflowEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- inside an existing event loop
    async def start_async(self) -> LakeflowEmulator:
        await self._server.start()
        return self

    async def stop_async(self) -> None:
        await self._server.stop()

    async def __aenter__(self) -> LakeflowEmulator:
        return await self.start_async()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()


class EmulatorClient(ControlMethods):
    """Controls an emulator in another process (``python -m airflow_provider_lakeflow.testing.emulator``).

    Stdlib only, so benchmarks and subprocess tests need nothing else.
    """

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, op: str, **kwargs: Any) -> Any:
        req = urllib.request.Request(
            f"{self.url}{CONTROL_PREFIX}{op}",
            data=json.dumps(kwargs).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())["result"]
        except urllib.error.HTTPError as e:
            try:
                err = json.loads(e.read())
            except ValueError:
                err = {}
            raise ApiError(e.code, err.get("error_code", f"HTTP_{e.code}"), err.get("message", str(e))) from None
