"""grm=bt at start-up: the combinations it cannot serve fail naming their key, the model
role and GRM pool stay needed, and the planner sizes a forward-only scorer."""

from __future__ import annotations

import pytest

from cpe.cluster.memory_plan import check_layout_fits, pool_needs
from cpe.compose import load_config, one_line_error
from cpe.models.paths import model_roles


@pytest.fixture(scope="module")
def tiny_path():
    from cpe.models.paths import resolve_model_path

    return resolve_model_path("fixture:tiny")


@pytest.fixture(scope="module")
def rm_folder(tiny_path, tmp_path_factory):
    from cpe.models.tiny_rm import build_tiny_reward_model

    return build_tiny_reward_model(tmp_path_factory.mktemp("rm") / "rm", tiny_path)


def _error_for(*overrides):
    with pytest.raises(Exception) as info:
        load_config(["experiment=tiny_cpu", *overrides])
    return one_line_error(info.value)


def test_ppo_with_a_reward_model_folder_is_accepted(rm_folder):
    cfg = load_config(
        ["experiment=tiny_cpu", "algorithm=ppo", "grm=bt", f"model.grm.path={rm_folder}"]
    )
    assert cfg.grm.backend == "bt" and cfg.grm.retries == 1  # tiny_cpu's value wins
    assert model_roles(cfg)["grm"].path == str(rm_folder)


def test_cpe_mode_needs_a_generative_grm(rm_folder):
    message = _error_for("grm=bt", f"model.grm.path={rm_folder}")
    assert message.startswith("grm.backend: bt gives rewards only, but algorithm.mode=cpe needs")
    assert "critiques from a generative GRM" in message


def test_a_folder_that_is_no_reward_model_is_refused(tiny_path):
    message = _error_for("algorithm=ppo", "grm=bt", f"model.grm.path={tiny_path}")
    assert message.startswith(f"model.grm.path: {str(tiny_path)!r} is not a cpe reward model")
    assert "python -m cpe.sft sft.task=bt" in message


def test_the_scorers_need_the_grm_pool(rm_folder):
    message = _error_for(
        "algorithm=ppo", "grm=bt", f"model.grm.path={rm_folder}", "cluster.pools.grm.engines=0"
    )
    assert message.startswith("cluster.pools.grm.engines: 0 must be > 0 (grm.backend=bt runs")


def test_a_gpu_scorer_takes_one_gpu():
    message = _error_for(
        "experiment=qwen2.5-7b", "algorithm=ppo", "grm=bt", "model.grm.path=/models/rm"
    )
    assert message.startswith("cluster.pools.grm.devices_per_engine: 2, but a BT scorer runs on")


def test_the_planner_sizes_bt_scorers_without_a_kv_cache():
    cfg = load_config(
        [
            "experiment=qwen2.5-7b",
            "algorithm=ppo",
            "grm=bt",
            "model.grm.path=/models/rm",
            "model.grm.arch=qwen2.5-7b",
            "cluster.pools.grm.engines=2",
            "cluster.pools.grm.devices_per_engine=1",
        ]
    )
    check_layout_fits(cfg)
    grm = {need.pool: need for need, _ in pool_needs(cfg)}["grm"]
    assert grm.gpus == 2 and grm.budget_gib == cfg.cluster.gpu_memory_gib
    assert "kv_one_sequence" not in grm.parts and grm.parts["activations"] > 0
    assert 13 < grm.parts["weights"] < 14  # a 7B backbone in bf16, no LM head


def test_a_model_fixture_is_no_reward_model():
    message = _error_for("algorithm=ppo", "grm=bt", "model.grm.path=fixture:tiny")
    assert message.startswith("model.grm.path: 'fixture:tiny' is not a cpe reward model")
