"""``python -m airflow_provider_lakeflow.testing.emulator``: serve the emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from airflow_provider_lakeflow.testing.emulator.control import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN
from airflow_provider_lakeflow.testing.emulator.lifecycle.condition_catalog import CONDITIONS
from airflow_provider_lakeflow.testing.emulator.server.app import EmulatorServer
from airflow_provider_lakeflow.testing.emulator.workspace import Workspace


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_lakeflow.testing.emulator",
        description="A local Databricks workspace emulator (Lakeflow pipelines, UC connections, OAuth) "
        "for offline DAG runs.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port (printed on startup)")
    parser.add_argument(
        "--token",
        action="append",
        dest="tokens",
        metavar="T",
        help=f"a personal access token to accept (repeatable; default {DEFAULT_TOKEN})",
    )
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID, help="OAuth M2M service principal client id")
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET, help="OAuth M2M client secret")
    parser.add_argument("--update-seconds", type=float, default=3.0, help="duration of a default pipeline update")
    parser.add_argument(
        "--list-conditions",
        action="store_true",
        help="print the error conditions script_condition accepts (with their SQLSTATE) and exit",
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        metavar="RPS",
        help="answer /api/ requests beyond RPS per second with 429 and Retry-After (default: no limit)",
    )
    parser.add_argument("--rate-limit-burst", type=float, default=None, metavar="N", help="default: RPS")
    parser.add_argument(
        "--schedule",
        action="append",
        default=[],
        metavar="PIPELINE=SECONDS",
        help="start an update of the pipeline (id or name; it may not exist yet) every SECONDS, as a Databricks Jobs "
        "schedule would (cause JOB_TASK; repeatable)",
    )
    parser.add_argument(
        "--table-seconds",
        action="append",
        default=[],
        metavar="TABLE=SECONDS",
        help="the table's flow COMPLETES this many seconds after its update starts RUNNING, before the update ends "
        "(full or short name; repeatable; other tables complete when the update ends)",
    )
    args = parser.parse_args(argv)
    for flag in ("schedule", "table_seconds"):
        pairs = {}
        for item in getattr(args, flag):
            name, sep, seconds = item.rpartition("=")
            try:
                pairs[name] = float(seconds)
            except ValueError:
                pairs[name] = -1.0
            if not sep or not name or pairs[name] < 0:
                parser.error(f"--{flag.replace('_', '-')} {item!r}: expected NAME=SECONDS with SECONDS >= 0")
        setattr(args, flag, pairs)
    return args


async def serve(args: argparse.Namespace) -> None:
    workspace = Workspace(
        tokens=tuple(args.tokens or (DEFAULT_TOKEN,)),
        clients={args.client_id: args.client_secret},
        update_seconds=args.update_seconds,
    )
    if args.rate_limit:
        workspace.set_rate_limit(args.rate_limit, args.rate_limit_burst)
    if args.table_seconds:
        workspace.set_default_script(update_seconds=args.update_seconds, table_seconds=args.table_seconds)
    for pipeline, every in args.schedule.items():
        workspace.schedule_updates(pipeline, every)
    server = EmulatorServer(workspace, args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    url = await server.start()
    print(f"Lakeflow emulator listening on {url}", flush=True)
    print("READY", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()


def list_conditions() -> None:
    for name, condition in sorted(CONDITIONS.items()):
        for sub in sorted(condition.subs) or [""]:
            print(f"{name}.{sub}" if sub else name, condition.sqlstate or "-")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list_conditions:
        list_conditions()
        return 0
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
