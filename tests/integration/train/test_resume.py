"""A driver SIGKILLed during generation, during the update and during a checkpoint
write (cpe.failpoints points), resumed each time with trainer.resume=auto, trains on exactly
the prompts of an uninterrupted run and ends with the same metrics; the checkpoint cut
short is never loaded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from integration.train.tiny_runs import train_command

from cpe.trainer.checkpoint import CheckpointManager
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


def _train_until_killed(run_dir: Path, fault: str, timeout_s: float = 420) -> None:
    """``cpe.train`` (resuming whatever run_dir holds) with ``CPE_FAILPOINT=fault``: the
    driver SIGKILLs itself at that point; then the rest of its process group (the local
    Ray it started) goes too, as a lost node's would."""
    cmd = train_command(
        run_dir,
        "trainer.resume=auto",
        *OVERRIDES,
    )
    log_path = run_dir.parent / f"killed_at_{fault.replace(':', '_')}.log"
    env = {**os.environ, "CPE_FAILPOINT": fault}
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
        try:
            code = proc.wait(timeout=timeout_s)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert code == -signal.SIGKILL, f"{fault}: exit {code}, see {log_path}"


def _complete_steps(run_dir: Path) -> list[int]:
    return [s for s, _ in CheckpointManager(run_dir).complete()]


def _ids_per_step(run_dir: Path) -> list[list[str]]:
    return [
        [
            json.loads(line)["id"]
            for line in (run_dir / "samples" / f"step_{s:06d}.jsonl").read_text().splitlines()
        ]
        for s in range(1, STEPS + 1)
    ]


def test_a_driver_killed_while_generating_updating_and_checkpointing_resumes_exactly(
    ray_session, tiny_config, train_in_process, tmp_path
):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_in_process(tiny_config(straight, *OVERRIDES), STEPS)

    _train_until_killed(resumed, "generate:2")  # engines busy with step 2's prompts
    assert _complete_steps(resumed) == [1]
    _train_until_killed(resumed, "update:3")  # resumed from 1; learners mid-update in 3
    assert _complete_steps(resumed) == [1, 2]
    _train_until_killed(resumed, "checkpoint:3")  # state written, no COMPLETE marker yet
    assert _complete_steps(resumed) == [1, 2]
    partial = resumed / "checkpoints" / "step_000003.partial"
    assert (partial / "policy_state").is_dir() and not (partial / "COMPLETE").exists()

    train_in_process(tiny_config(resumed, *OVERRIDES, "trainer.resume=auto"), STEPS)
    assert _complete_steps(resumed) == [1, 2, 3] and not partial.exists()

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
