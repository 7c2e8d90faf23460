"""Load-test the web service under gunicorn, beside the course's web service.

    .venv/bin/python -m bench.web_bench [--seconds 5]

Starts each server in turn on a free loopback port, with the same model (the
course's lin_reg.bin from ../shared, else one trained on generated trips), and
drives it with a small asyncio HTTP/1.1 client at several concurrencies. The
client runs on the same cores as the server, as on a 2-core box it must; both
sides pay for it alike, so compare the ratios more than the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT, bench_model
from local_stack.server import free_port

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
RIDE = {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}
CONCURRENCIES = (1, 8, 32)
LIST_SIZE = 100


@dataclass(frozen=True)
class Result:
    server: str
    payload: str
    rides_per_request: int
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def rides_per_second(self) -> float:
        return self.requests_per_second * self.rides_per_request

    def percentile_ms(self, q: int) -> float:
        return statistics.quantiles(self.latencies, n=100)[q - 1] * 1000 if len(self.latencies) > 1 else float("nan")


def http_request(port: int, body: bytes) -> bytes:
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bool]:
    """Send one request, read its response; (status, whether the server keeps the connection)."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection", "").lower() != "close"


async def client(port: int, request: bytes, deadline: float, latencies: list[float], errors: list[int]) -> None:
    reader = writer = None
    while time.perf_counter() < deadline:
        if writer is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert reader is not None
        start = time.perf_counter()
        status, keep_alive = await exchange(reader, writer, request)
        latencies.append(time.perf_counter() - start)
        if status != 200:
            errors.append(status)
        if not keep_alive:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def load(port: int, body: bytes, concurrency: int, seconds: float) -> tuple[int, int, float, list[float]]:
    request = http_request(port, body)
    warmup: list[float] = []
    await asyncio.gather(*(client(port, request, time.perf_counter() + 0.5, warmup, []) for _ in range(concurrency)))
    latencies: list[float] = []
    errors: list[int] = []
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(*(client(port, request, deadline, latencies, errors) for _ in range(concurrency)))
    return len(latencies), len(errors), time.perf_counter() - start, latencies


def wait_until_serving(port: int, server: subprocess.Popen, timeout: float = 60) -> None:
    body = http_request(port, json.dumps(RIDE).encode())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited with {server.returncode}")
        try:
            status, _ = asyncio.run(_probe(port, body))
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not answer within {timeout} s")


async def _probe(port: int, body: bytes) -> tuple[int, bool]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await exchange(reader, writer, body)
    finally:
        writer.close()


@contextmanager
def serving(argv: list[str], cwd: Path, env: dict[str, str], port: int) -> Iterator[None]:
    server = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_serving(port, server)
        yield
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def bench_server(name: str, port: int, payloads: dict[str, tuple[bytes, int]], seconds: float) -> list[Result]:
    results = []
    for payload, (body, rides) in payloads.items():
        for concurrency in CONCURRENCIES:
            requests, errors, elapsed, latencies = asyncio.run(load(port, body, concurrency, seconds))
            result = Result(name, payload, rides, concurrency, requests, errors, elapsed, latencies)
            print_result(result)
            results.append(result)
    return results


def table_row(*cells: str) -> str:
    server, payload, *numbers = cells
    return f"{server:<44} {payload:<10} " + " ".join(
        f"{n:>{w}}" for n, w in zip(numbers, (4, 9, 10, 8, 8, 6), strict=True)
    )


def print_result(r: Result) -> None:
    print(
        table_row(
            r.server,
            r.payload,
            str(r.concurrency),
            f"{r.requests_per_second:,.0f}",
            f"{r.rides_per_second:,.0f}",
            f"{r.percentile_ms(50):.2f}",
            f"{r.percentile_ms(99):.2f}",
            str(r.errors),
        ),
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run (after 0.5 s warm-up)")
    parser.add_argument(
        "--variant",
        action="append",
        help="run ours also with these environment overrides, e.g. WEB_THREADS=2 or "
        "GUNICORN_CMD_ARGS=--worker-class=sync (comma-separated; repeatable); ratios use the first",
    )
    args = parser.parse_args()
    args.variant = ["", *(args.variant or [])]

    single = (json.dumps(RIDE).encode(), 1)
    batch = (json.dumps([RIDE] * LIST_SIZE).encode(), LIST_SIZE)
    with tempfile.TemporaryDirectory(prefix="web-bench-") as tmp:
        workdir = Path(tmp)
        model, model_description = bench_model(workdir)
        shutil.copy(model, workdir / "lin_reg.bin")
        print(f"model: {model_description}; {os.cpu_count()} CPUs; {args.seconds:g} s per run")
        print(table_row("server", "payload", "conc", "req/s", "rides/s", "p50 ms", "p99 ms", "errors"))

        ours: dict[str, list[Result]] = {}
        for variant in args.variant:
            port = free_port()
            env = {**os.environ, "MODEL_URI": str(model), **dict(v.split("=", 1) for v in variant.split(",") if v)}
            name = f"ours {variant or '(project config)'}"
            with serving([GUNICORN, f"--bind=127.0.0.1:{port}", "model_service.web:app"], ROOT, env, port):
                ours[variant] = bench_server(name, port, {"1 ride": single, f"{LIST_SIZE} rides": batch}, args.seconds)

        # The course's command, from a directory holding lin_reg.bin and no gunicorn.conf.py; bound to
        # loopback, and without gunicorn 26's control socket so it cannot clash with another server's.
        port = free_port()
        baselines = Path(__file__).resolve().parent / "baselines"
        argv = [GUNICORN, f"--bind=127.0.0.1:{port}", "--no-control-socket", "--pythonpath", str(baselines)]
        with serving([*argv, "course_web_predict:app"], workdir, dict(os.environ), port):
            course = bench_server("course predict.py (1 sync worker)", port, {"1 ride": single}, args.seconds)

    print(f"\nrides/s, ours {args.variant[0] or '(project config)'} / course:")
    for ours_result in ours[args.variant[0]]:
        base = next(r for r in course if r.concurrency == ours_result.concurrency)
        print(
            f"  {ours_result.payload:<10} per request, concurrency {ours_result.concurrency:>2}: "
            f"{ours_result.rides_per_second / base.rides_per_second:5.1f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
