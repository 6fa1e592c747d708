"""Scale: thousands of pipelines with live updates, and the emulator's own CPU per get_update poll."""

from __future__ import annotations

import asyncio
import threading
import time

import aiohttp

from airflow_provider_lakeflow.testing import LakeflowEmulator

N = 2000
CONCURRENCY = 50
PAT = {"Authorization": "Bearer emulator-token"}


def _thread_cpu(thread: threading.Thread) -> float:
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def test_get_update_cpu_per_poll() -> None:
    emu = LakeflowEmulator(update_seconds=600).start()
    try:
        ws = emu.workspace
        t0 = time.perf_counter()
        targets = []
        for i in range(N):
            body = {
                "name": f"p{i}",
                "ingestion_definition": {
                    "connection_name": "c",
                    "objects": [
                        {"table": {"source_table": f"t{i}", "destination_catalog": "main", "destination_schema": "s"}}
                    ],
                },
            }
            pid = ws.api_create_pipeline(body, "u")["pipeline_id"]
            targets.append((pid, ws.api_start_update(pid, {})["update_id"]))
        setup = time.perf_counter() - t0

        state_t0 = time.process_time()
        for pid, uid in targets:
            ws.api_get_update(pid, uid)
        state_us = (time.process_time() - state_t0) / N * 1e6

        async def poll_all() -> tuple[float, float, float]:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:
                sem = asyncio.Semaphore(CONCURRENCY)

                async def poll(pid: str, uid: str) -> str:
                    async with (
                        sem,
                        session.get(f"{emu.url}/api/2.0/pipelines/{pid}/updates/{uid}", headers=PAT) as resp,
                    ):
                        assert resp.status == 200
                        return str((await resp.json())["update"]["state"])

                await asyncio.gather(*(poll(p, u) for p, u in targets[:100]))  # warm up connections
                assert emu._thread is not None
                server0, proc0, wall0 = _thread_cpu(emu._thread), time.process_time(), time.perf_counter()
                states = await asyncio.gather(*(poll(p, u) for p, u in targets))
                server = _thread_cpu(emu._thread) - server0
                assert set(states) == {"QUEUED"}
                return server, time.process_time() - proc0, time.perf_counter() - wall0

        server, process, wall = asyncio.run(poll_all())
        per_poll_ms = server / N * 1000
        print(
            f"\nscale: {N} pipelines+updates set up in {setup:.2f}s; state layer {state_us:.1f} us/get_update; "
            f"emulator thread CPU {per_poll_ms:.3f} ms/poll over HTTP; whole process (client+server) "
            f"{process / N * 1000:.3f} ms/poll; {N / wall:.0f} polls/s wall"
        )
        assert per_poll_ms < 5
        assert len(emu.requests(method="GET")) == N + 100
    finally:
        emu.stop()
