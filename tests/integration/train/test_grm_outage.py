"""A GRM endpoint that turns to garbage after the first step: ``python -m cpe.train`` (CPE,
the tiny model on real engines and learners, grm=openai against a real loopback
chat-completions server) stops at step 2 before its update, with one line naming the
invalid share, grm.max_invalid_share and the last error; step 1's metrics and checkpoint
stay as they were written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from integration.train.tiny_runs import train_command
from unit.reward.grm_fakes import ChatServer, Response

from cpe.trainer.checkpoint import CheckpointManager
from cpe.trainer.metrics import read_metrics

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]
HTML = Response(
    content=None, body="<html>502 Bad Gateway</html>", headers={"Content-Type": "text/html"}
)


def test_a_grm_answering_garbage_stops_the_run_before_training_on_it(tmp_path):
    run_dir = tmp_path / "run"
    metrics = run_dir / "metrics.jsonl"

    def respond(n, body):
        # Good while step 1 runs; once its row is written, 7 replies in 8 are garbage.
        broken = metrics.exists() and metrics.stat().st_size > 0
        return HTML if broken and n % 8 else Response()

    server = ChatServer(respond).start()
    try:
        proc = _train(run_dir, server.base_url)
    finally:
        server.stop()

    assert proc.returncode == 1, proc.stderr[-3000:]
    banner = [line for line in proc.stderr.splitlines() if line.startswith("cpe FAILED")]
    assert len(banner) == 1, proc.stderr[-3000:]
    assert "GRMError: " in banner[0] and "GRM results invalid this step (" in banner[0]
    assert "> grm.max_invalid_share=50%); last error: malformed chat-completions" in banner[0]
    rows = read_metrics(metrics)
    assert [row["step"] for row in rows] == [1]
    assert rows[0]["grm/invalid_rate"] == 0.0 and rows[0]["grm/results"] > 0
    assert [step for step, _ in CheckpointManager(run_dir).complete()] == [1]
    assert not (run_dir / "summary.json").exists()


def _train(run_dir: Path, base_url: str) -> subprocess.CompletedProcess:
    cmd = train_command(
        run_dir,
        "grm=openai",
        "cluster.pools.grm.engines=0",
        f"grm.openai.base_url={base_url}",
        "grm.openai.max_retries=0",
        "trainer.total_steps=3",
        "trainer.save_every=1",
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
