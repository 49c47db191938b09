"""Start-up validation: each bad value gets one line naming the key, before Ray."""

import pytest

from cpe.algo import POLICY_LOSSES
from cpe.compose import load_config, one_line_error
from cpe.data.sources import FORMATS
from cpe.prompts import DEFAULT
from cpe.trainer.checkpoint import MARKER
from cpe.weight_sync.backends import WEIGHT_SYNC_BACKENDS


def _error_for(*overrides, preset="tiny_cpu"):
    with pytest.raises(Exception) as info:
        load_config([f"experiment={preset}", *overrides])
    return one_line_error(info.value)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("grm.backoff_s=-1", "grm.backoff_s: -1.0 must be >= 0"),
        ("learner.weight_decay=-0.1", "learner.weight_decay: -0.1 must be >= 0"),
        ("learner.warmup_steps=-1", "learner.warmup_steps: -1 must be >= 0"),
        ("algorithm.entropy_coef=-0.01", "algorithm.entropy_coef: -0.01 must be >= 0"),
        ("data.max_train_records=0", "data.max_train_records: 0 must be > 0"),
        ("rollout.temperature=inf", "rollout.temperature: inf must be a finite number"),
        (f"rollout.n={10**23}", f"rollout.n: {10**23} does not fit a 64-bit integer"),
        ("data.format=csv", f"data.format: 'csv' is not one of {list(FORMATS)}"),
        (
            "algorithm.policy_loss=clip",
            f"algorithm.policy_loss: 'clip' is not one of {list(POLICY_LOSSES)}",
        ),
        (
            "algorithm.policy_loss=ppo",
            "algorithm.policy_loss: 'ppo' has no off-policy term for edited rows: use it only "
            "with algorithm.mode=ppo (algorithm.mode='cpe')",
        ),
        (
            "cluster.weight_sync=gloo",
            f"cluster.weight_sync: 'gloo' is not one of {list(WEIGHT_SYNC_BACKENDS)}",
        ),
        (
            "cluster.address=ray://head:10001",
            "cluster.address: ray://head:10001 is a Ray Client address: the driver must run "
            "on a node of the cluster (ray job submit, or cluster.address=auto there)",
        ),
        (
            "cluster.pools.rollout.devices_per_engine=9 cluster.num_nodes=2",
            "cluster.pools.rollout.devices_per_engine: 9 is more than "
            "cluster.devices_per_node=8: an engine's tensor-parallel group must fit one node",
        ),
        (
            "cluster.weight_sync=adapter",
            "cluster.weight_sync: adapter moves LoRA adapters only: set learner.lora.rank to "
            "1..512 (vLLM's largest), it is 0; or use object_store",
        ),
        (
            "cluster.weight_sync=nccl",
            "cluster.weight_sync: nccl needs cluster.device=gpu (cluster.device='cpu'): "
            "use object_store",
        ),
    ],
)
def test_bad_values_get_the_exact_line(override, expected):
    assert _error_for(*override.split()) == expected


@pytest.mark.parametrize(
    "override, expected",
    [
        ("cluster.pools.rollout.engines=0", "cluster.pools.rollout.engines: 0 must be > 0"),
        ("cluster.pools.policy.ranks=0", "cluster.pools.policy.ranks: 0 must be > 0"),
        (
            "cluster.pools.value.ranks=0",
            "cluster.pools.value.ranks: 0 must be > 0 (algorithm.advantage=gae reads learned values)",
        ),
        (
            "cluster.pools.grm.engines=0",
            "cluster.pools.grm.engines: 0 must be > 0 (grm.backend=vllm runs the GRM on them)",
        ),
        ("cluster.pools.reference.ranks=-1", "cluster.pools.reference.ranks: -1 must be >= 0"),
        # Engine pools have engines/devices_per_engine, learner pools ranks/devices_per_rank.
        ("cluster.pools.reference.engines=1", "cluster.pools.reference.engines: no such key"),
        ("cluster.pools.rollout.ranks=1", "cluster.pools.rollout.ranks: no such key"),
        *[
            (
                f"cluster.pools.{pool}.devices_per_engine=0",
                f"cluster.pools.{pool}.devices_per_engine: 0 must be > 0",
            )
            for pool in ("rollout", "grm")
        ],
        *[
            (
                f"cluster.pools.{pool}.devices_per_rank=0",
                f"cluster.pools.{pool}.devices_per_rank: 0 must be > 0",
            )
            for pool in ("policy", "value", "reference")
        ],
    ],
)
def test_every_pool_size_is_checked(override, expected):
    assert _error_for(override) == expected


def test_a_kl_term_needs_reference_ranks():
    assert _error_for("algorithm.kl.coef=0.1") == (
        "model.reference.path: algorithm.kl.coef > 0 needs a reference model: set "
        "model.reference.path; cluster.pools.reference.ranks: 0 must be > 0 "
        "(algorithm.kl.coef > 0 needs a reference rank)"
    )


def test_ppo_loss_is_fine_in_ppo_mode_and_nccl_on_gpu():
    assert load_config(["experiment=tiny_cpu", "algorithm=ppo", "algorithm.policy_loss=ppo"])
    assert load_config(["experiment=qwen2.5-7b"]).cluster.weight_sync == "nccl"


def test_openai_retries_are_checked():
    line = _error_for("grm=openai", "cluster.pools.grm.engines=0", "grm.openai.max_retries=-1")
    assert line == "grm.openai.max_retries: -1 must be >= 0"


def test_resume_is_auto_never_or_a_complete_checkpoint(tmp_path):
    for value in ("auto", "never"):
        assert load_config(["experiment=tiny_cpu", f"trainer.resume={value}"])
    assert _error_for(f"trainer.resume={tmp_path}") == (
        f"trainer.resume: '{tmp_path}' is not auto, never or a complete checkpoint folder "
        f"(no {MARKER} file in it)"
    )
    (tmp_path / MARKER).write_text("3")
    assert load_config(["experiment=tiny_cpu", f"trainer.resume={tmp_path}"])


def test_python_function_is_imported_at_start_up():
    base = ("grm=python", "cluster.pools.grm.engines=0")
    good = "grm.python_function=cpe.reward.rules:letter_reward"
    assert load_config(["experiment=tiny_cpu", *base, good]).grm.python_function
    # The wording after the key belongs to cpe.reward.python_backend.
    for spec, detail in (("no_such_module_x:fn", "no_such_module_x"), ("nocolon", "nocolon")):
        line = _error_for(*base, f"grm.python_function={spec}")
        assert line.startswith("grm.python_function: ") and detail in line
        assert "grm.python_function=" not in line and "\n" not in line


def test_prompt_set_and_override_files_must_exist(tmp_path):
    assert _error_for("prompts.set=no_such_set") == (
        "prompts.set: prompt set 'no_such_set' is neither a built-in set (default) nor an "
        "existing directory"
    )
    missing = tmp_path / "rubric.jinja"
    assert _error_for(f"prompts.overrides.grm={missing}") == (
        f"prompts.overrides.grm: '{missing}': no such file"
    )
    assert load_config(["experiment=tiny_cpu", f"prompts.set={DEFAULT.template_dir}"])


def test_a_reference_model_is_set_from_the_command_line():
    cfg = load_config(
        [
            "experiment=tiny_cpu",
            "model.reference.path=fixture:tiny",
            "algorithm.kl.coef=0.1",
            "cluster.pools.reference.ranks=1",
        ]
    )
    assert cfg.model.reference.path == "fixture:tiny"


def test_only_a_vllm_grm_needs_a_grm_model():
    from cpe.models.paths import model_roles

    rules = "grm.python_function=cpe.reward.rules:letter_reward"
    overrides = ["experiment=tiny_cpu", "grm=python", rules, "cluster.pools.grm.engines=0"]
    # No GRM folder is checked, resolved or loaded for a python (or openai) GRM.
    assert list(model_roles(load_config(overrides))) == ["policy", "value"]
    assert list(model_roles(load_config(["experiment=tiny_cpu"]))) == ["policy", "grm", "value"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["eval.task=multiple_choice", "eval.probe=true"],
            "eval.probe: applies to eval.task=pairwise only",
        ),
        (
            ["eval.task=preference_grm", "eval.reference=dataset"],
            "eval.reference: applies to eval.task=pairwise only",
        ),
        (
            ["trainer.eval_every=2", "eval.judge.dtype=bfloat16"],
            "eval.judge.dtype: 'bfloat16': with trainer.eval_every",
        ),
        (
            ["trainer.eval_every=2", "eval.task=preference_judge"],
            "eval.task: 'preference_judge': during training only pairwise",
        ),
        (
            ["eval.lc_method=glm"],
            "eval.lc_method: 'glm' is not one of ['alpaca_eval', 'length_only']",
        ),
        (["eval.task=foo"], "eval.task: 'foo' is not one of"),
    ],
)
def test_eval_settings_that_would_be_ignored_or_cannot_run_stop_start_up(overrides, expected):
    from cpe.compose import load_config, one_line_error

    with pytest.raises(Exception) as info:
        load_config(["experiment=tiny_cpu", *overrides])
    assert expected in one_line_error(info.value)


def test_grpo_places_no_value_model_and_says_so_for_a_value_pool():
    from cpe.models.paths import model_roles

    with pytest.raises(Exception) as info:
        load_config(["experiment=tiny_cpu", "algorithm.advantage=grpo"])
    assert one_line_error(info.value) == (
        "cluster.pools.value.ranks: 1, but algorithm.advantage=grpo reads no learned values, "
        "so no value model runs: set it to 0"
    )
    cfg = load_config(
        ["experiment=tiny_cpu", "algorithm.advantage=grpo", "cluster.pools.value.ranks=0"]
    )
    assert "value" not in model_roles(cfg)
    with pytest.raises(Exception, match=r"cluster.pools.value.ranks: 0 must be > 0"):
        load_config(["experiment=tiny_cpu", "cluster.pools.value.ranks=0"])


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["learner.lora.rank=-1"], "learner.lora.rank: -1 must be >= 0"),
        (["learner.lora.rank=8", "learner.lora.alpha=0"], "learner.lora.alpha: 0.0 must be > 0"),
        (
            ["learner.lora.rank=8", "learner.lora.target_modules=[]"],
            "learner.lora.target_modules: is empty",
        ),
        (
            ["learner.lora.rank=8", "learner.zero_stage=3"],
            "learner.lora.rank: LoRA runs with learner.zero_stage 0-2 (got 3)",
        ),
    ],
)
def test_lora_settings_are_checked(overrides, expected):
    assert expected in _error_for(*overrides)


def test_pipeline_chunks_are_checked():
    assert "trainer.pipeline_chunks: 0 must be > 0" in _error_for("trainer.pipeline_chunks=0")
    assert (
        "trainer.pipeline_chunks: 2, but algorithm.mode=ppo has no pipelined maker (only cpe)"
        in _error_for("trainer.pipeline_chunks=2", "algorithm=ppo")
    )
    load_config(["experiment=tiny_cpu", "trainer.pipeline_chunks=2"])  # cpe mode: fine


def test_lora_on_embeddings_or_the_head_is_refused():
    assert (
        "learner.lora.target_modules: embed_tokens, lm_head: adapters go on linear layers only"
        in _error_for(
            "learner.lora.rank=8", "learner.lora.target_modules=[q_proj,embed_tokens,lm_head]"
        )
    )


def test_shared_prefix_with_gradient_checkpointing_is_refused():
    assert _error_for("learner.gradient_checkpointing=true") == (
        "learner.shared_prefix: needs learner.gradient_checkpointing=false (checkpointed "
        "layers drop the shared prompt cache); set one of them to false"
    )
    load_config(
        [
            "experiment=tiny_cpu",
            "learner.gradient_checkpointing=true",
            "learner.shared_prefix=false",
        ]
    )
