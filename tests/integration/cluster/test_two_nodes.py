"""A tiny training on a two-node Ray cluster with the policy ranks on the second node:
checkpoints land in the configured run folder and a second cluster resumes from them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cpe.trainer.metrics import read_metrics

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).with_name("two_node_run.py")


def _train_on_two_nodes(run_dir: Path, steps: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(run_dir), str(steps)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_learner_ranks_on_a_second_node_checkpoint_to_the_run_folder_and_resume(tmp_path):
    run_dir = tmp_path / "shared" / "run"
    first = _train_on_two_nodes(run_dir, steps=1)
    assert first["layout"]["policy"] == [first["nodes"]["second"]] * 2
    assert first["layout"]["rollout"] == [first["nodes"]["head"]]
    assert first["layout"]["value"] == [first["nodes"]["head"]]
    step1 = run_dir / "checkpoints" / "step_000001"
    assert (step1 / "COMPLETE").is_file()
    shards = {p.name for p in step1.rglob("*") if p.is_file()}
    assert any("rank" in name or "states" in name for name in shards), sorted(shards)

    second = _train_on_two_nodes(run_dir, steps=2)  # a fresh cluster: resume=auto
    assert second["layout"]["policy"] == [second["nodes"]["second"]] * 2
    assert [m["step"] for m in read_metrics(run_dir / "metrics.jsonl")] == [1, 2]
    assert (run_dir / "checkpoints" / "step_000002" / "COMPLETE").is_file()
