import pytest

from cpe.trainer.checkpoint import CheckpointManager, read_driver_state, resolve_resume


def test_only_committed_checkpoints_count(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=2)
    for step in (1, 2, 3):
        tmp = mgr.begin(step)
        (tmp / "weights").write_text("w")
        mgr.commit(tmp, step, {"step": step})
    crashed = mgr.begin(4)  # a crash mid-write: never committed
    (crashed / "weights").write_text("half")
    assert [s for s, _ in mgr.complete()] == [2, 3]  # keep=2 pruned step 1
    assert mgr.latest().name == "step_000003"
    assert read_driver_state(mgr.latest()) == {"step": 3}
    assert resolve_resume("auto", mgr) == mgr.latest()
    assert resolve_resume("never", mgr) is None


def test_explicit_resume_must_be_complete(tmp_path):
    mgr = CheckpointManager(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        resolve_resume(str(tmp_path / "checkpoints" / "step_000009"), mgr)
