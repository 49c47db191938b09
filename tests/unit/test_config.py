import pytest

from cpe.compose import PRESETS, compose, load_config, one_line_error, to_typed
from cpe.config import CPEConfig
from cpe.tools.show_config import main as show_config
from cpe.validate import ConfigError, validate


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes_and_validates(preset):
    cfg = load_config([f"experiment={preset}"])
    assert isinstance(cfg, CPEConfig)
    assert cfg.name == preset


def test_defaults_are_the_demo():
    cfg = load_config([])
    assert cfg.name == "demo"
    assert cfg.model.policy.path == "fixture:smollm2"
    assert cfg.cluster.device == "cpu"


def test_paper_preset_keeps_paper_hyperparameters():
    cfg = load_config(["experiment=qwen2.5-7b"])
    assert (cfg.rollout.n, cfg.rollout.temperature, cfg.rollout.top_p) == (4, 0.9, 0.9)
    assert cfg.rollout.max_new_tokens == 2048
    assert cfg.trainer.rollout_batch_prompts == 128
    assert cfg.learner.mini_batch_prompts == 64
    assert (cfg.learner.actor_lr, cfg.learner.critic_lr, cfg.learner.weight_decay) == (
        1e-6,
        1e-5,
        0.01,
    )
    assert (cfg.algorithm.selection, cfg.algorithm.edit_ratio) == ("random", 0.5)
    assert list(cfg.grm.weights) == [0.35, 0.40, 0.25]
    assert cfg.cluster.device == "gpu"


def _error_for(overrides):
    with pytest.raises(Exception) as info:
        load_config(["experiment=tiny_cpu", *overrides])
    return one_line_error(info.value)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("algorithm.edit_ratio=1.5", "algorithm.edit_ratio: 1.5 must be in [0.0, 1.0]"),
        ("algorithm.foo=1", "algorithm.foo:"),
        ("algorithm.edit_ratio=abc", "algorithm.edit_ratio:"),
        ("algorithm.selection=best", "algorithm.selection: 'best' is not one of"),
        ("trainer.rollout_batch_prompts=5", "learner.mini_batch_prompts: 2 must divide"),
        ("cluster.pools.policy.ranks=3", "not divisible by cluster.pools.policy.ranks=3"),
        ("cluster.devices_per_node=2", "cluster.pools: the pools ask for 5 CPU devices"),
        ("grm.weights=[0.5,0.5]", "grm.weights: needs 3 weights"),
        ("algorithm.kl.coef=0.1", "model.reference.path:"),
        ("experiment=nope", "Could not find 'experiment/nope'"),
    ],
)
def test_bad_settings_get_one_line_naming_the_key(override, expected):
    message = _error_for([override])
    assert expected in message
    assert "\n" not in message


def test_all_problems_are_reported_together():
    cfg = to_typed(compose(["experiment=tiny_cpu", "algorithm.edit_ratio=2", "rollout.n=0"]))
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    keys = [key for key, _ in info.value.problems]
    assert "algorithm.edit_ratio" in keys and "rollout.n" in keys


def test_show_config_prints_presets_and_fails_cleanly(capsys):
    assert show_config(["experiment=tiny_cpu"]) == 0
    out = capsys.readouterr().out
    assert "name: tiny_cpu" in out and "edit_ratio: 0.5" in out
    assert show_config(["experiment=tiny_cpu", "algorithm.edit_ratio=7"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "config error: algorithm.edit_ratio: 7.0 must be in [0.0, 1.0]"


def test_a_single_template_is_overridden_by_path():
    from cpe.prompts import DEFAULT, PromptSet

    judge = DEFAULT.path("judge")
    cfg = load_config(["experiment=tiny_cpu", f"prompts.overrides.grm={judge}"])
    prompts = PromptSet.from_config(cfg.prompts)
    assert prompts.path("grm") == judge and prompts.path("edit") == DEFAULT.path("edit")
    assert PromptSet.from_config(load_config(["experiment=tiny_cpu"]).prompts) == DEFAULT
