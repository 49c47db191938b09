"""The PPO baseline runs through the same driver, GRPO without a value model, a
cluster too small for the pools fails at start-up, before any engine or learner starts,
saying what is missing, and a start that fails part way stops what it started."""

from __future__ import annotations

import time

import pytest

from cpe.cluster.placement import ClusterTooSmall, Placement
from cpe.trainer.metrics import read_metrics
from cpe.trainer.system import start_system


def test_ppo_mode_trains_without_critiques_or_edits(
    ray_session, tiny_config, train_in_process, tmp_path
):
    cfg = tiny_config(
        tmp_path,
        "algorithm=ppo",
        "grm=python",
        "grm.python_function=cpe.reward.rules:letter_reward",
        "cluster.pools.grm.engines=0",
        "trainer.total_steps=2",
        "trainer.save_every=2",
    )
    train_in_process(cfg, 2)
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        assert row["edit/count"] == 0 and row["batch/selected_edits"] == 0
        assert row["batch/rows"] == cfg.trainer.rollout_batch_prompts * cfg.rollout.n
        assert "time/critique" not in row and "time/edit" not in row
        assert row["policy/grad_norm"] > 0
    assert (tmp_path / "checkpoints" / "step_000002" / "policy_hf" / "config.json").exists()


# GRPO (no value model), one mini-batch per step, a rule reward (no GRM engines)
GRPO_WITH_A_RULE = (
    "algorithm=ppo",
    "learner.mini_batch_prompts=4",
    "algorithm.advantage=grpo",
    "cluster.pools.value.ranks=0",
    "grm=python",
    "grm.python_function=cpe.reward.rules:letter_reward",
    "cluster.pools.grm.engines=0",
)


def test_grpo_runs_without_a_value_model(ray_session, tiny_config, train_in_process, tmp_path):
    # No value rank is placed, built, trained or checkpointed; a resume knows it too. One
    # mini-batch per step: pi_old comes from the update's own forward (no separate pass).
    overrides = (*GRPO_WITH_A_RULE, "trainer.save_every=1")
    train_in_process(tiny_config(tmp_path, *overrides, "trainer.total_steps=1"), 1)
    checkpoint = tmp_path / "checkpoints" / "step_000001"
    assert (checkpoint / "policy_state").is_dir() and not (checkpoint / "value_state").exists()
    train_in_process(tiny_config(tmp_path, *overrides, "trainer.total_steps=2"), 2)
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    assert not any(k.startswith("value/") for r in rows for k in r)
    assert rows[1]["policy/grad_norm"] > 0


def test_cluster_too_small_fails_naming_the_shortfall(ray_session, tiny_config, tmp_path):
    # the config declares 16 devices, but the running Ray cluster has 8 CPUs
    cfg = tiny_config(
        tmp_path,
        "cluster.devices_per_node=16",
        "cluster.pools.policy.ranks=4",
        "cluster.pools.policy.devices_per_rank=2",
    )
    with pytest.raises(
        ClusterTooSmall,
        match=r"CPU: the pools need 11 \(rollout=1, grm=1, policy=8, value=1\) but the cluster has 8",
    ):
        Placement(cfg.cluster).create()


def test_a_start_that_fails_part_way_leaves_nothing_behind(ray_session, tiny_config, tmp_path):
    # The engines are placed, then the policy ranks die loading a model that is not
    # there: the placement groups (named, so a leftover would refuse the next start in
    # this Ray session) and every actor in them are gone again.
    cfg = tiny_config(tmp_path, *GRPO_WITH_A_RULE)
    with pytest.raises(ray_session.exceptions.ActorDiedError, match="no-such-model"):
        start_system(cfg, {"policy": str(tmp_path / "no-such-model")}, total_steps=1)
    live = [
        pg["name"]
        for pg in ray_session.util.placement_group_table().values()
        if pg["name"].startswith("cpe-") and pg["state"] != "REMOVED"
    ]
    assert live == []
    total, deadline = ray_session.cluster_resources()["CPU"], time.monotonic() + 60
    while ray_session.available_resources().get("CPU") != total:  # released asynchronously
        assert time.monotonic() < deadline, ray_session.available_resources()
        time.sleep(0.5)


def test_an_actor_computes_on_the_cpus_its_bundle_reserves(ray_session, tiny_config, tmp_path):
    import ray

    cfg = tiny_config(
        tmp_path,
        "cluster.pools.policy.ranks=1",
        "cluster.pools.policy.devices_per_rank=2",
    )

    @ray.remote
    class Probe:
        def threads(self) -> tuple[int, int]:
            import torch

            from cpe.cluster.threads import bundle_threads

            return bundle_threads(), torch.get_num_threads()

    placement = Placement(cfg.cluster).create()
    try:
        two = Probe.options(**placement.options_for("policy", 0)).remote()
        one = Probe.options(**placement.options_for("rollout", 0)).remote()
        assert ray.get([two.threads.remote(), one.threads.remote()]) == [(2, 2), (1, 1)]
    finally:
        placement.remove()


@pytest.mark.parametrize("weight_sync", ["object_store", "adapter"])
def test_lora_policy_trains_and_the_engines_follow_it(
    ray_session, tiny_config, train_in_process, tmp_path, weight_sync
):
    cfg = tiny_config(
        tmp_path,
        *GRPO_WITH_A_RULE,
        "learner.lora.rank=4",
        f"cluster.weight_sync={weight_sync}",
        "trainer.total_steps=2",
        "trainer.save_every=2",
    )
    train_in_process(cfg, 2)
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:  # the engines sample from the policy the learners hold
        assert row["sync/logprob_gap_max"] < 1e-4 and row["policy/grad_norm"] > 0
    # merged: every weight of the tiny model (1.38 MiB); adapter: its LoRA files (~0.07)
    moved = [row["sync/mb"] for row in rows]
    assert max(moved) < 0.2 if weight_sync == "adapter" else min(moved) > 1.3
    hf = tmp_path / "checkpoints" / "step_000002" / "policy_hf"
    assert (hf / "config.json").exists() and (hf / "lora_adapter" / "adapter_config.json").exists()
