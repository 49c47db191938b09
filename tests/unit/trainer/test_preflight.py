import subprocess
import sys

import pytest

from cpe.compose import load_config
from cpe.data import DataError
from cpe.trainer.preflight import prepare


def _cfg(tmp_path, *overrides):
    return load_config(["experiment=tiny_cpu", f"logging.run_dir={tmp_path / 'run'}", *overrides])


def test_bad_training_file_is_reported_before_anything_starts(tmp_path):
    bad = tmp_path / "train.jsonl"
    bad.write_text(
        '{"id": "a", "question": "q", "persona": {"x": 1}}\n{"id": "b", "question": "", "persona": {}}\n'
    )
    with pytest.raises(DataError) as info:
        prepare(_cfg(tmp_path, "data=jsonl", f"data.train_path={bad}"))
    assert f"{bad}:2: field 'question'" in str(info.value)


def test_existing_run_is_never_overwritten(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text('{"step": 1}\n')
    with pytest.raises(ValueError, match="already holds a run"):
        prepare(_cfg(tmp_path, "trainer.resume=never"))
    assert prepare(_cfg(tmp_path, "trainer.resume=auto"))  # resuming it is fine


def test_missing_model_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.policy.path='/nowhere'"):
        prepare(_cfg(tmp_path, "model.policy.path=/nowhere"))


def test_cli_exits_2_with_one_line(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cpe.train",
            "experiment=tiny_cpu",
            "algorithm.edit_ratio=3",
            f"logging.run_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert (
        out.stderr.strip().splitlines()[-1]
        == "config error: algorithm.edit_ratio: 3.0 must be in [0.0, 1.0]"
    )
