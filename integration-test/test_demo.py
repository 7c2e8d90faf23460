"""`make demo`'s script, run as a developer runs it: every ride sent comes out, and nothing is left running.

The demo starts its own LocalStack (on a free port here) and trains into a
temporary working directory, so the developer's artifacts/ and MLflow store
are never touched.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

from local_stack.aws import PROJECT_ROOT
from local_stack.server import free_port


def run_demo(workdir, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scripts.demo", "local", "--workdir", str(workdir), *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/mlflow.db"},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def accepting(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_the_demo_accounts_for_every_ride_and_stops_localstack(tmp_path):
    port = free_port()
    result = run_demo(tmp_path, "--port", str(port), "--rides", "30", "--rate", "30")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    sent = re.search(r"OK: all (\d+) rides accounted for by each consumer", output)
    assert sent, output
    for consumer in ("duration", "cost"):
        counts = re.search(rf"{consumer} (\d+) predictions \+ (\d+) dead letters", output[sent.start() :])
        assert counts, output
        assert int(sent[1]) == 30 == int(counts[1]) + int(counts[2]), consumer
        assert int(counts[2]) >= 1, "the demo sends malformed records, so some rides are dead-lettered"
    assert "[demo] LocalStack stopped" in output
    assert not accepting(port)
    assert (tmp_path / "mlflow.db").exists(), "the models were trained in the working directory"
    assert (tmp_path / "data" / "green_tripdata_2021-02.parquet").exists(), "the months are left in data/"


def test_the_demo_refuses_a_port_in_use_before_doing_anything(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = run_demo(tmp_path, "--port", str(busy.getsockname()[1]), timeout=60)
    assert result.returncode == 2
    assert "already in use" in result.stderr
    assert not (tmp_path / "artifacts").exists()
