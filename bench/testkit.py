"""The test kit's own costs, side by side with moto's ``ThreadedMotoServer`` (moto is in the test extra).

    .venv/bin/python -m bench.testkit [--rounds 20] [--messages 1000] [--json out.json] [--smoke]

Figures (medians; p90 where it helps), printed; nothing is asserted:

- ``GraphServer`` start to first answered request, in this process after the imports (warm) and
  in a new interpreter including them (cold); moto's ``ThreadedMotoServer(port=0)`` the same ways;
- a reset with N messages in the mailbox (each with a 1 KiB file attachment), in-memory stores:
  ``GraphServer.reset()``, the admin API's ``POST /_graphattach/reset`` and the server's share;
  moto's ``POST /moto-api/reset`` with N S3 objects;
- per-test fixture overhead: what the ``graph`` fixture does (a reset) plus minting a token, and each alone.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

COLD_GRAPH = """
import time
t0 = time.perf_counter()
from graphattach.testing import GraphServer
import httpx
server = GraphServer().start()
httpx.get(server.root_url + "/_graphattach/health")
print(time.perf_counter() - t0)
server.stop()
"""

COLD_MOTO = """
import time
t0 = time.perf_counter()
from moto.server import ThreadedMotoServer
import httpx
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
httpx.get(f"http://{host}:{port}/moto-api/data.json")
print(time.perf_counter() - t0)
server.stop()
"""


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"median_ms": statistics.median(ordered) * 1000, "p90_ms": p90 * 1000, "n": len(ordered)}


def _timed(fn: Callable[[], Any], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def _cold(script: str, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
        samples.append(float(done.stdout.strip().splitlines()[-1]))
    return samples


# graphattach ---------------------------------------------------------------------------------------


def graph_start_warm(rounds: int) -> list[float]:
    from graphattach.testing import GraphServer

    GraphServer().start().stop()  # imports and the process's signing key, as in any test session
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        server = GraphServer().start()
        httpx.get(server.root_url + "/_graphattach/health")
        samples.append(time.perf_counter() - start)
        server.stop()
    return samples


def _fill(server: Any, messages: int) -> None:
    """``messages`` drafts of Adele's, each with a 1 KiB file attachment, through the services."""
    from graphattach.services import mail
    from graphattach.services.users import find_user

    thread = server._thread
    content = base64.b64encode(b"x" * 1024).decode()

    async def fill() -> None:
        user = await find_user(thread.ctx, "adele@contoso.onmicrosoft.com")
        assert user is not None
        for i in range(messages):
            await mail.create_message(
                thread.ctx,
                user,
                None,
                {"subject": f"message {i}"},
                [{"@odata.type": "#microsoft.graph.fileAttachment", "name": f"a{i}.txt", "contentBytes": content}],
            )

    asyncio.run_coroutine_threadsafe(fill(), thread.loop).result()


def graph_reset(rounds: int, messages: int) -> dict[str, list[float]]:
    from graphattach.services import tenant
    from graphattach.testing import GraphServer

    via_method: list[float] = []
    via_api: list[float] = []
    in_server: list[float] = []
    with GraphServer() as server, httpx.Client() as http:
        thread = server._thread
        assert thread is not None
        for _ in range(rounds):
            _fill(server, messages)
            assert len(server.messages()) == messages
            start = time.perf_counter()
            server.reset()
            via_method.append(time.perf_counter() - start)
            _fill(server, messages)
            start = time.perf_counter()
            http.post(server.root_url + "/_graphattach/reset").raise_for_status()
            via_api.append(time.perf_counter() - start)
            _fill(server, messages)

            async def timed_reset() -> float:
                began = time.perf_counter()
                await tenant.reset(thread.ctx)
                return time.perf_counter() - began

            in_server.append(asyncio.run_coroutine_threadsafe(timed_reset(), thread.loop).result())
            assert server.messages() == []
    return {"method": via_method, "api": via_api, "server": in_server}


def fixture_overhead(rounds: int) -> dict[str, list[float]]:
    """Reset + token as a test pays them, and each on its own (demo tenant, in-memory stores)."""
    from graphattach.testing import GraphServer

    with GraphServer() as server:
        server.reset()
        server.token()

        def one() -> None:
            server.reset()  # what the graph fixture does before each test
            server.token()  # the first thing a test does

        both = _timed(one, rounds)
        return {"both": both, "reset": _timed(server.reset, rounds), "token": _timed(server.token, rounds)}


# moto -------------------------------------------------------------------------------------------------


def moto_start_warm(rounds: int) -> list[float]:
    from moto.server import ThreadedMotoServer

    samples = []
    for i in range(rounds + 1):
        start = time.perf_counter()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        httpx.get(f"http://{host}:{port}/moto-api/data.json")
        if i:  # the first one pays the imports
            samples.append(time.perf_counter() - start)
        server.stop()
    return samples


def moto_reset(rounds: int, objects: int) -> list[float]:
    import os

    import boto3
    from moto.server import ThreadedMotoServer

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint)
    samples = []
    try:
        with httpx.Client() as http:
            for _ in range(rounds):
                s3.create_bucket(Bucket="bench")
                for i in range(objects):
                    s3.put_object(Bucket="bench", Key=f"o{i}", Body=b"x" * 1024)
                start = time.perf_counter()
                http.post(f"{endpoint}/moto-api/reset").raise_for_status()
                samples.append(time.perf_counter() - start)
    finally:
        server.stop()
    return samples


# report ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.testkit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="samples per warm figure (default 20)")
    parser.add_argument("--cold-rounds", type=int, default=3, help="new interpreters per cold figure (default 3)")
    parser.add_argument(
        "--messages", type=int, default=1000, help="messages (and moto objects) per reset (default 1000)"
    )
    parser.add_argument("--reset-rounds", type=int, default=5, help="resets measured (default 5)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the benchmark runs")
    parser.add_argument("--no-moto", action="store_true", help="graphattach only")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.cold_rounds, args.messages, args.reset_rounds = 2, 1, 10, 1

    results: dict[str, dict[str, float]] = {}
    results["graphattach start → first answer (warm)"] = _ms(graph_start_warm(args.rounds))
    results["graphattach start → first answer (cold, with imports)"] = _ms(_cold(COLD_GRAPH, args.cold_rounds))
    resets = graph_reset(args.reset_rounds, args.messages)
    results[f"graphattach reset() with {args.messages} messages (GraphServer, in-process)"] = _ms(resets["method"])
    results[f"graphattach POST /_graphattach/reset with {args.messages} messages"] = _ms(resets["api"])
    results[f"graphattach reset with {args.messages} messages (server side)"] = _ms(resets["server"])
    overhead = fixture_overhead(args.rounds * 5)
    results["graphattach per-test overhead: reset + token"] = _ms(overhead["both"])
    results["graphattach per-test overhead: reset alone (demo tenant)"] = _ms(overhead["reset"])
    results["graphattach per-test overhead: token alone"] = _ms(overhead["token"])
    if not args.no_moto:
        results["moto ThreadedMotoServer start → first answer (warm)"] = _ms(moto_start_warm(args.rounds))
        results["moto ThreadedMotoServer start → first answer (cold, with imports)"] = _ms(
            _cold(COLD_MOTO, args.cold_rounds)
        )
        results[f"moto POST /moto-api/reset with {args.messages} S3 objects"] = _ms(
            moto_reset(args.reset_rounds, args.messages)
        )

    width = max(map(len, results))
    print(f"{'figure':<{width}}  {'median':>10}  {'p90':>10}  n")
    for name, figure in results.items():
        print(f"{name:<{width}}  {figure['median_ms']:>8.1f} ms  {figure['p90_ms']:>7.1f} ms  {figure['n']:.0f}")
    if args.json:
        meta = {"python": platform.python_version(), "machine": platform.machine(), "smoke": args.smoke}
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
