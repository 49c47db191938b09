"""The comparison's plan (which command each stage runs) and its table."""

from __future__ import annotations

import json

import pytest

from cpe.compare.stages import plan_stages, user_overrides
from cpe.compare.table import comparison_rows, markdown
from cpe.compose import load_config


def plan(tmp_path, *overrides):
    args = [f"compare.output_dir={tmp_path}", *overrides]
    return {s.name: s for s in plan_stages(load_config(args), args)}


def test_user_overrides_go_to_every_stage_but_the_compare_node_stays_here():
    assert user_overrides(["a.b=1", "compare.runs=[cpe]", "+compare.x=2", "c=3"]) == [
        "a.b=1",
        "c=3",
    ]


def test_the_default_plan_samples_pairs_trains_bt_then_three_runs_and_evaluates(tmp_path):
    stages = plan(tmp_path, "trainer.total_steps=3")
    assert list(stages) == ["label", "bt", "ppo-bt", "ppo-grm", "cpe", "eval"]
    label, bt = stages["label"], stages["bt"]
    assert "label.sample_answers=true" in label.args and "label.preference=teacher" in label.args
    assert f"sft.train_path={tmp_path}/label/pairs.jsonl" in bt.args and "sft.task=bt" in bt.args
    assert f"model.grm.path={tmp_path}/bt/model" in stages["ppo-bt"].args
    assert "grm=bt" in stages["ppo-bt"].args and "algorithm=ppo" in stages["ppo-grm"].args
    for name in ("label", "bt", "ppo-bt", "ppo-grm", "cpe", "eval"):
        assert stages[name].args[:1] == ("trainer.total_steps=3",) or (
            "trainer.total_steps=3" in stages[name].args
        )
    assert stages["cpe"].output == tmp_path / "cpe" / "summary.json"
    policies = next(a for a in stages["eval"].args if a.startswith("eval.policies="))
    assert f'"cpe={tmp_path}/cpe"' in policies and f'"ppo-bt={tmp_path}/ppo-bt"' in policies


def test_the_users_sft_settings_win_over_the_comparisons_defaults(tmp_path):
    args = plan(tmp_path, "sft.epochs=5")["bt"].args
    assert args.index("sft.epochs=5") > args.index("sft.epochs=2")


def test_given_pairs_skip_labelling_and_runs_without_bt_skip_the_reward_model(tmp_path):
    stages = plan(tmp_path, "compare.pairs_path=/data/pairs.jsonl")
    assert "label" not in stages and "sft.train_path=/data/pairs.jsonl" in stages["bt"].args
    stages = plan(tmp_path, "compare.runs=[ppo-grm,cpe]")
    assert list(stages) == ["ppo-grm", "cpe", "eval"]


@pytest.mark.parametrize(
    "override, key",
    [
        ("compare.runs=[ppo,cpe]", "compare.runs"),
        ("compare.sample_pairs=0", "compare.sample_pairs"),
    ],
)
def test_bad_compare_settings_name_their_key(override, key):
    from cpe.validate import ConfigError

    with pytest.raises(ConfigError) as info:
        load_config([override])
    assert key in str(info.value)


def test_the_table_reads_each_runs_last_step_and_its_eval(tmp_path):
    for run, reward in (("ppo-grm", 1.5), ("cpe", 2.25)):
        (tmp_path / run).mkdir()
        rows = [
            {"step": 1, "original/reward_mean": 0.0},
            {"step": 2, "original/reward_mean": reward, "original/length_tokens": 80.0},
        ]
        (tmp_path / run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "eval").mkdir()
    results = {
        "policies": {
            "cpe": {"win_rate": 0.625, "length_tokens": 90.0},
            "ppo-grm": {"win_rate": 0.5},
        }
    }
    (tmp_path / "eval" / "results.json").write_text(json.dumps(results))
    rows = comparison_rows(tmp_path, ["ppo-grm", "cpe"], {"cpe": 100.0})
    assert rows["cpe"]["final_reward"] == 2.25 and rows["cpe"]["steps"] == 2
    assert rows["cpe"]["win_rate"] == 0.625 and rows["ppo-grm"]["length_tokens"] is None
    text = markdown(rows, {"cpe": 100.0})
    assert "| cpe | 2.250 | 80.0 | 0.625 | 90.0 | 100.0 |" in text
    assert "| cpe | 100 |" in text


def test_every_stage_is_checked_before_the_first_runs_and_errors_name_the_stage(tmp_path):
    from cpe.compare.stages import check_stages

    args = [f"compare.output_dir={tmp_path}", "trainer.eval_every=2"]
    with pytest.raises(ValueError, match=r"^stage ppo-bt: eval.judge.model"):
        check_stages(plan_stages(load_config(args), args))
    args = [f"compare.output_dir={tmp_path}", "experiment=qwen2.5-7b"]
    check_stages(plan_stages(load_config(args), args))  # the GPU preset's plan is valid


def test_the_bt_run_scores_answers_as_far_as_the_reward_model_read_them(tmp_path):
    stages = plan(tmp_path, "rollout.max_prompt_tokens=700", "rollout.max_new_tokens=100")
    assert "sft.max_len=800" in stages["bt"].args
    assert "grm.max_prompt_tokens=800" in stages["ppo-bt"].args
    assert "cluster.pools.grm.devices_per_engine=1" in stages["ppo-bt"].args


def test_a_personas_file_of_the_data_follows_the_pairs(tmp_path):
    stages = plan(tmp_path, "data.personas_path=/data/personas.jsonl")
    assert "label.personas_path=/data/personas.jsonl" in stages["label"].args
    assert "sft.personas_path=/data/personas.jsonl" in stages["bt"].args
