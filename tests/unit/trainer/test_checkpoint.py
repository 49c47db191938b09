import errno
import json
import os
import re
import subprocess

import pytest

from cpe.learner.group import LearnerDied
from cpe.trainer.checkpoint import (
    MANIFEST,
    CheckpointError,
    CheckpointManager,
    read_driver_state,
    resolve_resume,
)


def save(mgr: CheckpointManager, step: int, payload: str = "w") -> None:
    with mgr.writing(step, {"step": step}) as tmp:
        (tmp / "policy_state").mkdir()
        (tmp / "policy_state" / "rank0.pt").write_text(payload)


def test_only_committed_checkpoints_count(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=2)
    for step in (1, 2, 3):
        save(mgr, step)
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


def test_the_manifest_lists_every_file_with_size_and_sha256(tmp_path):
    mgr = CheckpointManager(tmp_path)
    save(mgr, 1, payload="abc")
    files = json.loads((mgr.latest() / MANIFEST).read_text())["files"]
    # sha256("abc"), by hand from FIPS 180-2's example
    assert files["policy_state/rank0.pt"] == {
        "bytes": 3,
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    }
    assert set(files) == {"policy_state/rank0.pt", "driver.json"}


@pytest.mark.parametrize(
    "tamper, reason",
    [
        (lambda ck: (ck / "policy_state" / "rank0.pt").write_text("evil"), "differs"),
        (lambda ck: (ck / "policy_state" / "rank0.pt").write_text("w" * 9), "differs"),
        (lambda ck: (ck / "policy_state" / "extra.pt").write_text("x"), "not in MANIFEST"),
        (lambda ck: (ck / "policy_state" / "rank0.pt").unlink(), "missing"),
        (lambda ck: (ck / MANIFEST).unlink(), "no MANIFEST"),
    ],
)
def test_resume_refuses_a_checkpoint_changed_after_cpe_wrote_it(tmp_path, tamper, reason):
    mgr = CheckpointManager(tmp_path)
    save(mgr, 1)
    tamper(mgr.latest())
    for resume in ("auto", str(mgr.latest())):
        with pytest.raises(CheckpointError, match=reason):
            resolve_resume(resume, mgr)


def test_rotation_keeps_the_checkpoint_just_written_even_at_a_lower_step(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=1)
    for step in (10, 12):
        save(mgr, step)
    assert [s for s, _ in mgr.complete()] == [12]
    save(mgr, 11)  # resumed from an older folder: the new one is the one to keep
    assert [s for s, _ in mgr.complete()] == [11]
    mgr.keep = 2
    save(mgr, 13)
    save(mgr, 14)
    assert [s for s, _ in mgr.complete()] == [13, 14]


def test_a_run_resumed_from_an_older_folder_drops_the_abandoned_later_ones(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=3)
    for step in (10, 11, 12):
        save(mgr, step, payload=f"first run {step}")
    save(mgr, 11, payload="resumed from 10")  # trainer.resume=.../step_000010
    assert [s for s, _ in mgr.complete()] == [10, 11]
    latest = resolve_resume("auto", mgr)
    assert (latest / "policy_state" / "rank0.pt").read_text() == "resumed from 10"


def test_a_malformed_manifest_is_refused_naming_it(tmp_path):
    mgr = CheckpointManager(tmp_path)
    save(mgr, 1)
    (mgr.latest() / MANIFEST).write_text('{"files": {"driver.json": {"bytes": "x"}}}')
    with pytest.raises(CheckpointError, match="MANIFEST.json is malformed"):
        resolve_resume("auto", mgr)


def test_a_step_saved_again_replaces_its_folder(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=3)
    save(mgr, 2, payload="first")
    save(mgr, 2, payload="second")
    assert (mgr.latest() / "policy_state" / "rank0.pt").read_text() == "second"
    assert sorted(p.name for p in mgr.root.iterdir()) == ["step_000002"]


def test_a_failed_write_removes_the_partial_and_names_the_intact_checkpoint(tmp_path):
    mgr = CheckpointManager(tmp_path)
    save(mgr, 1)
    with pytest.raises(CheckpointError) as err:
        with mgr.writing(2, {"step": 2}) as tmp:
            (tmp / "half").write_text("x")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert "checkpoint step 2 could not be written" in str(err.value)
    assert "OSError: [Errno 28] No space left on device" in str(err.value)
    assert f"{mgr.root / 'step_000001'}, is intact" in str(err.value)
    assert sorted(p.name for p in mgr.root.iterdir()) == ["step_000001"]
    assert resolve_resume("auto", mgr) == mgr.root / "step_000001"


def test_a_learner_error_inside_a_ray_task_error_is_named_by_its_root_cause(tmp_path):
    class TaskError(RuntimeError):  # Ray's RayTaskError keeps the worker's error in .cause
        def __init__(self, cause):
            super().__init__("ray::PolicyWorker.save_state() (pid=1)\n  long traceback")
            self.cause = cause

    mgr = CheckpointManager(tmp_path)
    with pytest.raises(CheckpointError, match=r"PermissionError: denied; there is no earlier"):
        with mgr.writing(1, {"step": 1}):
            raise TaskError(PermissionError("denied"))
    # cpe's own errors already name what happened: the walk stops there
    with pytest.raises(CheckpointError, match=r"LearnerDied: policy rank 1 \(pid 7\) died"):
        with mgr.writing(1, {"step": 1}):
            try:
                raise TaskError(PermissionError("inner"))
            except TaskError as exc:
                raise LearnerDied("policy rank 1 (pid 7) died during save") from exc


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs: a real full disk (needs root and mount, as this machine and CI have)."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)])
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_during_a_save_leaves_the_previous_checkpoint_loadable(small_disk):
    mgr = CheckpointManager(small_disk)
    save(mgr, 1, payload="x" * 300_000)
    with pytest.raises(CheckpointError) as err:
        save(mgr, 2, payload="y" * 900_000)
    assert re.search(
        r"\(0\.\d MB free on its disk then\): OSError: .*No space left", str(err.value)
    )
    assert "step_000001, is intact" in str(err.value)
    assert [s for s, _ in mgr.complete()] == [1]
    assert not list(mgr.root.glob("*.partial"))  # the space is given back
    assert resolve_resume("auto", mgr) == mgr.root / "step_000001"
    save(mgr, 2, payload="z" * 300_000)  # once there is room again, saving goes on
    assert [s for s, _ in mgr.complete()] == [1, 2]


def test_commit_fsyncs_every_file_and_the_folders(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    mgr = CheckpointManager(tmp_path)
    save(mgr, 1)
    tmp = str(mgr.root / "step_000001.partial")
    for path in (f"{tmp}/policy_state/rank0.pt", f"{tmp}/driver.json", f"{tmp}/policy_state"):
        assert path in synced
    marker = synced.index(f"{tmp}/.COMPLETE.tmp")  # written aside, fsynced, renamed
    assert synced.index(f"{tmp}/policy_state/rank0.pt") < marker
    assert str(mgr.root) in synced[marker:]  # the folder holding the rename, after it
