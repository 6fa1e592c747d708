"""``python -m airflow_provider_lakeflow.testing.emulator``: serve the emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from airflow_provider_lakeflow.testing.emulator.control import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN


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
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    from airflow_provider_lakeflow.testing.emulator.server import EmulatorServer
    from airflow_provider_lakeflow.testing.emulator.state import Workspace

    workspace = Workspace(
        tokens=tuple(args.tokens or (DEFAULT_TOKEN,)),
        clients={args.client_id: args.client_secret},
        update_seconds=args.update_seconds,
    )
    if args.rate_limit:
        workspace.set_rate_limit(args.rate_limit, args.rate_limit_burst)
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
    from airflow_provider_lakeflow.testing.emulator.conditions import CONDITIONS

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
