"""A run killed (SIGKILL) after a checkpoint and resumed with trainer.resume=auto trains
on exactly the prompts of an uninterrupted run and ends with the same metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cpe.trainer.metrics import read_metrics

STEPS = 3
OVERRIDES = [
    "grm=python",
    "grm.python_function=cpe.reward.rules:letter_reward",
    "cluster.pools.grm.engines=0",
    f"trainer.total_steps={STEPS}",
    "trainer.save_every=1",
    "trainer.keep_checkpoints=5",
]


def _kill_after_checkpoint(run_dir: Path, step: int, timeout_s: float = 420) -> None:
    cmd = [
        sys.executable,
        "-m",
        "cpe.train",
        "experiment=tiny_cpu",
        f"logging.run_dir={run_dir}",
        "logging.wandb_mode=disabled",
        "logging.progress=false",
        *OVERRIDES,
    ]
    log = (run_dir.parent / "killed_run.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    marker = run_dir / "checkpoints" / f"step_{step:06d}" / "COMPLETE"
    deadline = time.time() + timeout_s
    try:
        while not marker.exists():
            assert proc.poll() is None, f"run exited early, see {log.name}"
            assert time.time() < deadline, "no checkpoint in time"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (run_dir / "checkpoints" / f"step_{STEPS:06d}").exists(), (
        "killed too late to test resume"
    )


def _ids_per_step(run_dir: Path) -> list[list[str]]:
    return [
        [
            json.loads(line)["id"]
            for line in (run_dir / "samples" / f"step_{s:06d}.jsonl").read_text().splitlines()
        ]
        for s in range(1, STEPS + 1)
    ]


def test_killed_run_resumes_to_the_same_result(
    ray_session, tiny_config, train_in_process, tmp_path
):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_in_process(tiny_config(straight, *OVERRIDES), STEPS)

    _kill_after_checkpoint(resumed, step=2)
    train_in_process(tiny_config(resumed, *OVERRIDES, "trainer.resume=auto"), STEPS)

    a, b = read_metrics(straight / "metrics.jsonl"), read_metrics(resumed / "metrics.jsonl")
    assert [r["step"] for r in b] == [1, 2, 3]  # nothing lost, nothing logged twice
    assert _ids_per_step(straight) == _ids_per_step(resumed)
    for key in (
        "original/reward_mean",
        "edit/reward_mean",
        "policy/policy_loss",
        "value/value_loss",
        "original/length_tokens",
        "batch/selected_edits",
    ):
        assert abs(a[-1][key] - b[-1][key]) < 1e-4, (key, a[-1][key], b[-1][key])
