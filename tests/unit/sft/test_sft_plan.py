"""cpe.sft's start-up checks: one line naming the key, nothing written by a failed start."""

from __future__ import annotations

import json

import pytest

from cpe.compose import load_config
from cpe.sft.__main__ import main
from cpe.sft.plan import SETTINGS_FILE, plan_sft
from cpe.validate import ConfigError


def config(tmp_path, *overrides):
    return load_config(["experiment=tiny_cpu", f"sft.output_dir={tmp_path / 'out'}", *overrides])


def test_model_and_examples_are_required(tmp_path):
    with pytest.raises(ConfigError) as info:
        plan_sft(config(tmp_path))
    assert [key for key, _ in info.value.problems] == ["sft.model", "sft.train_path"]


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["sft.task=bt", "learner.lora.rank=8"], "learner.lora.rank"),
        (["sft.task=bt", "learner.micro_batch_tokens=512"], "learner.micro_batch_tokens"),
        (["sft.task=grm", "sft.personas_path=/p.jsonl"], "sft.personas_path"),
    ],
)
def test_settings_the_task_would_ignore_are_refused(tmp_path, overrides, key):
    cfg = config(tmp_path, "sft.model=fixture:tiny", "sft.train_path=x.jsonl", *overrides)
    with pytest.raises(ConfigError) as info:
        plan_sft(cfg)
    assert info.value.problems[0][0] == key


def test_a_failed_start_leaves_the_folder_free_for_the_corrected_command(tmp_path, capsys):
    args = [
        "experiment=tiny_cpu",
        f"sft.output_dir={tmp_path / 'out'}",
        "sft.model=fixture:tiny",
        f"sft.train_path={tmp_path / 'typo.jsonl'}",
    ]
    assert main(args) == 2
    assert "typo.jsonl" in capsys.readouterr().err
    assert not (tmp_path / "out" / SETTINGS_FILE).exists()


def test_a_folder_made_with_other_settings_is_refused_naming_the_keys(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / SETTINGS_FILE).write_text(json.dumps({"task": "policy", "epochs": 1}))
    cfg = config(tmp_path, "sft.model=fixture:tiny", "sft.train_path=x.jsonl", "sft.epochs=3")
    with pytest.raises(ValueError, match=r"sft.task \('policy' -> 'grm'\).*sft.epochs \(1 -> 3\)"):
        plan_sft(cfg)


def test_a_finished_folder_is_refused(tmp_path):
    (tmp_path / "out" / "model").mkdir(parents=True)
    cfg = config(tmp_path, "sft.model=fixture:tiny", "sft.train_path=x.jsonl")
    with pytest.raises(ValueError, match="already holds a finished model"):
        plan_sft(cfg)
