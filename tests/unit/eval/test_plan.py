"""Planning an evaluation: every check that would otherwise fail after engines started."""

import pytest

from cpe.compose import load_config
from cpe.eval.plan import output_folder, plan_eval
from cpe.eval.policies import parse_policy

pytestmark = pytest.mark.unit


def _cfg(tmp_path, *overrides):
    return load_config(
        [
            "experiment=tiny_cpu",
            f"eval.output_dir={tmp_path / 'ev'}",
            "eval.max_records=3",
            *overrides,
        ]
    )


def test_a_policy_named_like_the_reference_is_refused(tmp_path):
    cfg = _cfg(tmp_path, 'eval.policies=["initial=fixture:tiny"]')
    with pytest.raises(ValueError, match="named 'initial' like the reference"):
        plan_eval(cfg, progress=False)


def test_the_grm_pool_must_exist_for_a_vllm_judge(tmp_path):
    cfg = _cfg(
        tmp_path,
        "eval.policies=[fixture:tiny]",
        "cluster.pools.grm.engines=0",
        "grm=python",
        "grm.python_function=cpe.reward.rules:letter_reward",
    )
    with pytest.raises(ValueError, match="cluster.pools.grm.engines: 0"):
        plan_eval(cfg, progress=False)


def test_prompts_longer_than_the_budget_stop_the_plan_naming_the_key(tmp_path):
    cfg = _cfg(
        tmp_path, "eval.policies=[fixture:tiny]", "rollout.max_prompt_tokens=40", "eval.probe=true"
    )
    with pytest.raises(ValueError, match=r"rollout.max_prompt_tokens: 9 eval prompts of initial"):
        plan_eval(cfg, progress=False)


def test_plan_opens_the_caches_and_orders_the_reference_first(tmp_path):
    plan = plan_eval(_cfg(tmp_path, "eval.policies=[fixture:tiny]"), progress=False)
    assert [p.name for p in plan.generated] == ["initial", "tiny"]
    assert sorted(p.name for p in (tmp_path / "ev" / "answers").iterdir()) == [
        "initial.meta.json",
        "tiny.meta.json",
    ]


def test_the_default_folder_is_inside_the_evaluated_run(tmp_path):
    run = tmp_path / "demo-1"
    ckpt = run / "checkpoints" / "step_000002"
    (ckpt / "policy_hf").mkdir(parents=True)
    (ckpt / "policy_hf" / "config.json").write_text("{}")
    (ckpt / "COMPLETE").write_text("2")
    cfg = load_config(["experiment=tiny_cpu"])
    assert output_folder(cfg, [parse_policy(str(run), "k")]) == run / "eval" / "bundled-eval"
    assert output_folder(cfg, [parse_policy("fixture:tiny", "k")]).name.startswith(
        "eval-bundled-eval-"
    )
