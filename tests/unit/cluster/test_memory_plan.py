"""The planner on the presets: the table, the start-up refusal naming the pool."""

import pytest

from cpe.cluster.memory_plan import LayoutDoesNotFit, check_layout_fits, pool_needs
from cpe.compose import load_config
from cpe.tools.plan import main


@pytest.mark.parametrize("preset", ["qwen2.5-7b", "qwen2.5-14b"])
def test_the_gpu_presets_fit_their_pools(preset):
    cfg = load_config([f"experiment={preset}"])
    check_layout_fits(cfg)
    needs = {need.pool: need for need, _ in pool_needs(cfg)}
    assert set(needs) == {"rollout", "grm", "policy", "value"}
    for name, need in needs.items():
        pool = getattr(cfg.cluster.pools, name)
        assert need.gpus == getattr(pool, "ranks", None) or need.gpus == (
            pool.engines * pool.devices_per_engine
        )


def test_a_14b_value_model_on_two_ranks_is_refused_naming_the_pool():
    cfg = load_config(["experiment=qwen2.5-14b", "cluster.pools.value.ranks=2"])
    with pytest.raises(LayoutDoesNotFit) as info:
        check_layout_fits(cfg)
    message = str(info.value)
    assert message.startswith("cluster.pools.value: about 109.7 GiB per GPU needed (weights 13.0")
    assert "but a GPU offers 80.0 (cluster.gpu_memory_gib=80), 29.7 GiB short" in message
    assert "policy" not in message.split(":")[0]


def test_cpu_runs_are_not_planned():
    check_layout_fits(load_config(["experiment=tiny_cpu"]))


def test_the_tool_prints_the_table_and_fails_on_a_misfit(capsys):
    assert main(["experiment=qwen2.5-14b"]) == 0
    out = capsys.readouterr().out
    assert "18 GPUs of 80 GiB" in out and "KV" in out and "fits" in out
    assert main(["experiment=qwen2.5-14b", "cluster.pools.value.ranks=2"]) == 1
    assert "29.7 short" in capsys.readouterr().out
    assert main(["experiment=nope"]) == 2
