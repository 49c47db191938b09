"""A disk that fills up during a checkpoint save: the run stops with a clear error, the
partial folder is gone, and the previous checkpoint is intact and accepted for resume."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from integration.train.tiny_runs import train_command

from cpe.trainer.checkpoint import CheckpointManager, resolve_resume

# One tiny_cpu checkpoint is ~13 MB: the first fits, the second's partial does not.
DISK_MB = 20


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mount)])
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_during_a_save_stops_the_run_and_keeps_the_last_checkpoint(
    small_disk, tmp_path
):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoints").symlink_to(small_disk)  # only checkpoints go to the small disk
    cmd = train_command(
        run_dir,
        "grm=python",
        "grm.python_function=cpe.reward.rules:letter_reward",
        "cluster.pools.grm.engines=0",
        "trainer.total_steps=3",
        "trainer.save_every=1",
    )
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out[-3000:]
    assert "checkpoint step 2 could not be written" in out, out[-3000:]
    # torch's zip writer says "unexpected pos", not ENOSPC: the free space says it
    assert re.search(r"\(0\.\d MB free on its disk then\)", out), out[-3000:]
    assert "step_000001, is intact" in out
    mgr = CheckpointManager(run_dir)
    assert [s for s, _ in mgr.complete()] == [1]
    assert sorted(p.name for p in Path(small_disk).iterdir()) == ["step_000001"]
    assert resolve_resume("auto", mgr) == mgr.root / "step_000001"  # its manifest holds
    rows = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2  # what was written before the failure stays
