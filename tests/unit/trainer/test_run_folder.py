"""A run folder holds one run: new runs claim their own, resumes only continue a run
made with the same settings."""

import multiprocessing
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from cpe.compose import load_config, one_line_error
from cpe.trainer.preflight import prepare
from cpe.trainer.run_folder import (
    check_outlives_job,
    check_same_run,
    claim_new,
    names_new_run,
    release_unused,
)
from cpe.validate import ConfigError


def test_a_stamped_run_dir_names_a_new_run():
    assert names_new_run("runs/tiny_cpu-${now:%Y%m%d-%H%M%S}")
    assert not names_new_run("runs/my-run")


def test_a_taken_folder_gets_the_next_suffix(tmp_path):
    base = tmp_path / "runs" / "tiny-20261130-101500"
    assert claim_new(base) == base
    assert claim_new(base) == base.with_name("tiny-20261130-101500-2")
    assert claim_new(base) == base.with_name("tiny-20261130-101500-3")


def test_a_folder_made_by_hydra_but_holding_no_run_is_claimed(tmp_path):
    (tmp_path / "0").mkdir()  # Hydra creates a sweep point's folder before the job runs
    assert claim_new(tmp_path / "0") == tmp_path / "0"


def _claim(base, queue):
    queue.put(str(claim_new(base)))


def test_runs_started_in_the_same_second_never_share_a_folder(tmp_path):
    base, queue = tmp_path / "run", multiprocessing.get_context("spawn").Queue()
    procs = [
        multiprocessing.get_context("spawn").Process(target=_claim, args=(base, queue))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    claimed = sorted(queue.get(timeout=5) for _ in procs)
    assert claimed == sorted({str(base), *(f"{base}-{n}" for n in (2, 3, 4))})


def test_release_removes_only_an_unused_claim(tmp_path):
    unused = claim_new(tmp_path / "a")
    release_unused(unused)
    assert not unused.exists()
    used = claim_new(tmp_path / "b")
    (used / "config.yaml").write_text("name: x\n")
    release_unused(used)
    assert (used / "config.yaml").read_text() == "name: x\n"


def _cfg(run_dir, *overrides):
    return load_config(["experiment=tiny_cpu", f"logging.run_dir={run_dir}", *overrides])


def _save(cfg):
    """What cpe.train.run writes at a run's start."""
    folder = Path(cfg.logging.run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))


def test_resuming_under_other_settings_names_the_keys(tmp_path):
    _save(_cfg(tmp_path / "run", "algorithm.selection=random"))
    with pytest.raises(ConfigError) as info:
        prepare(
            _cfg(tmp_path / "run", "algorithm.selection=conditional", "algorithm.edit_ratio=0.25")
        )
    assert one_line_error(info.value) == (
        f"logging.run_dir: {tmp_path / 'run'} holds a run made with other settings "
        "(algorithm.edit_ratio: 0.5 there, 0.25 now, algorithm.selection: 'random' there, "
        "'conditional' now): continue it with its own settings or pick a new logging.run_dir"
    )


def test_resuming_with_a_longer_budget_or_other_logging_is_fine(tmp_path):
    _save(_cfg(tmp_path / "run"))
    check_same_run(
        _cfg(
            tmp_path / "run",
            "trainer.total_steps=9",
            "logging.progress=false",
            "logging.wandb_mode=disabled",
        )
    )


def test_other_tools_output_folders_do_not_block_a_resume(tmp_path):
    # Their defaults carry a ${now:...} stamp: a resume a second later resolves others.
    _save(_cfg(tmp_path / "run", "label.output_dir=runs/label-1", "sft.output_dir=runs/sft-1"))
    check_same_run(
        _cfg(tmp_path / "run", "label.output_dir=runs/label-2", "sft.output_dir=runs/sft-2")
    )


def test_keys_of_another_schema_version_are_not_compared(tmp_path):
    cfg = _cfg(tmp_path / "run")
    _save(cfg)
    saved = tmp_path / "run" / "config.yaml"
    tree = OmegaConf.load(saved)
    del tree.learner["shared_prefix"]  # written before the key existed
    tree.learner["retired_key"] = 3  # a key since removed
    OmegaConf.save(tree, saved)
    check_same_run(cfg)


def test_a_ray_job_keeps_its_run_folder_out_of_the_working_dir_copy(tmp_path, monkeypatch):
    copy = tmp_path / "working_dir_files" / "_ray_pkg"
    copy.mkdir(parents=True)
    monkeypatch.chdir(copy)
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", "{}")
    for inside in ("runs/x", str(copy / "runs" / "x")):  # Hydra makes sweep folders absolute
        with pytest.raises(ConfigError, match="lies in this Ray job's temporary copy"):
            prepare(_cfg(inside))
    check_outlives_job(_cfg(tmp_path / "shared" / "run"))
    monkeypatch.delenv("RAY_JOB_CONFIG_JSON_ENV_VAR")
    check_outlives_job(_cfg("runs/x"))
