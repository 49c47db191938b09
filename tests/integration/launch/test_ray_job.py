"""A tiny training submitted with ``python -m cpe.launch submit`` to a real Ray head
started with ``ray start --head`` from the project's environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from cpe.net import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head on 127.0.0.1 in its own process group and temp dir; its dashboard
    address. Stopped by signalling that group: ``ray stop`` would also stop the test
    session's own Ray."""
    port, dashboard = free_port(), free_port()
    temp = tempfile.mkdtemp(prefix="rayhead", dir="/tmp")  # sockets need a short path
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("RAY_ADDRESS", None)
    log = open(Path(temp) / "head.log", "w")  # closed in the finally below
    head = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ray"),
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard}",
            # 52365 by default: taken by the test session's own Ray, whose agent holds it
            f"--dashboard-agent-listen-port={free_port()}",
            "--num-cpus=8",
            f"--temp-dir={temp}",
            "--object-store-memory=600000000",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{dashboard}"
    try:
        _wait_for_jobs_api(address, head, Path(temp) / "head.log")
        yield address
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        log.close()


def _wait_for_jobs_api(address: str, head: subprocess.Popen, log: Path) -> None:
    import urllib.error
    import urllib.request

    deadline = time.time() + 180
    while time.time() < deadline:
        assert head.poll() is None, log.read_text()[-3000:]
        try:
            urllib.request.urlopen(f"{address}/api/version", timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers (401 when the cluster uses token authentication)
        except OSError:
            time.sleep(1)
    raise AssertionError(f"no Jobs API at {address}: {log.read_text()[-3000:]}")


def _launch(command: str, address: str, runs: Path, *overrides: str, timeout: int = 900):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cpe.launch",
            command,
            f"--address={address}",
            f"--runs={runs}",
            "--",
            *overrides,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done, done.stdout + done.stderr


def test_a_submitted_tiny_training_succeeds_and_keeps_its_run_folder(
    ray_head, tiny_training, tmp_path
):
    runs = tmp_path / "runs"
    done, out = _launch("submit", ray_head, runs, *tiny_training)
    assert done.returncode == 0, out[-4000:]
    assert ": SUCCEEDED; run folder: " in out
    (run_dir,) = runs.iterdir()
    assert f"run folder: {run_dir}" in out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 1
    assert (run_dir / "checkpoints" / "step_000001" / "COMPLETE").exists()
    assert (run_dir / "metrics.jsonl").read_text().count("\n") == 1


def test_a_sweep_runs_one_job_per_point_and_writes_the_summary(ray_head, tiny_training, tmp_path):
    runs = tmp_path / "runs"
    done, out = _launch(
        "sweep",
        ray_head,
        runs,
        *tiny_training,
        "algorithm.selection=random,conditional",
        timeout=1500,
    )
    assert done.returncode == 0, out[-4000:]
    (sweep,) = runs.iterdir()
    for n, selection in enumerate(("random", "conditional")):
        summary = json.loads((sweep / str(n) / "summary.json").read_text())
        assert summary["steps"] == 1
        assert f"selection: {selection}" in (sweep / str(n) / "config.yaml").read_text()
    rows = (sweep / "summary.csv").read_text().splitlines()
    assert rows[0].startswith("point,algorithm.selection,steps,")
    assert [r.split(",")[:3] for r in rows[1:]] == [["0", "random", "1"], ["1", "conditional", "1"]]
