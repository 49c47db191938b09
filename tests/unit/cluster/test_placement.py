from cpe.cluster.placement import bundle_for, missing_resources, plan_pools
from cpe.compose import load_config


def test_plan_and_bundles_cpu_and_gpu():
    cfg = load_config(["experiment=tiny_cpu"])
    plans = {p.name: p for p in plan_pools(cfg.cluster)}
    assert set(plans) == {"rollout", "grm", "policy", "value"}
    assert plans["policy"].slots == 2
    assert bundle_for(plans["policy"], "cpu") == {"CPU": 1.0}
    gpu = load_config(["experiment=qwen2.5-7b"])
    gplans = {p.name: p for p in plan_pools(gpu.cluster)}
    assert bundle_for(gplans["grm"], "gpu") == {"GPU": 2.0, "CPU": 2.0}


def test_missing_resources_names_what_is_short():
    cfg = load_config(["experiment=qwen2.5-7b"])
    problems = missing_resources(plan_pools(cfg.cluster), "gpu", {"CPU": 64.0, "GPU": 8.0})
    assert len(problems) == 1
    assert problems[0].startswith("GPU: the pools need 10 (rollout=2, grm=2, policy=4, value=2)")
    assert missing_resources(plan_pools(cfg.cluster), "gpu", {"CPU": 64.0, "GPU": 16.0}) == []


def test_pinned_bundles_ask_for_their_pools_resource():
    gpu = load_config(["experiment=qwen2.5-7b"])
    plans = {p.name: p for p in plan_pools(gpu.cluster)}
    assert bundle_for(plans["grm"], "gpu", pinned=True) == {
        "GPU": 2.0,
        "CPU": 2.0,
        "cpe_pool_grm": 2.0,
    }
    cpu = {p.name: p for p in plan_pools(load_config(["experiment=tiny_cpu"]).cluster)}
    assert bundle_for(cpu["policy"], "cpu", pinned=True) == {"CPU": 1.0, "cpe_pool_policy": 1.0}


def test_a_missing_pool_resource_says_how_to_offer_it():
    cfg = load_config(["experiment=tiny_cpu"])
    have = {"CPU": 8.0, "cpe_pool_rollout": 1.0, "cpe_pool_grm": 1.0, "cpe_pool_value": 1.0}
    problems = missing_resources(plan_pools(cfg.cluster), "cpu", have, pinned=True)
    assert problems == [
        "cpe_pool_policy: the pools need 2 (rollout=1, grm=1, policy=2, value=1) but the "
        "cluster has 0 (cluster.pin_pools: start its nodes with --resources "
        "'{\"cpe_pool_policy\": N}')"
    ]


def test_gpu_bundles_reserve_host_cpus_per_gpu():
    gpu = load_config(["experiment=qwen2.5-7b"])
    plans = {p.name: p for p in plan_pools(gpu.cluster)}
    assert gpu.cluster.cpus_per_gpu == 4
    assert bundle_for(plans["grm"], "gpu", cpus_per_gpu=4) == {"GPU": 2.0, "CPU": 8.0}
    problems = missing_resources(
        plan_pools(gpu.cluster), "gpu", {"CPU": 16.0, "GPU": 16.0}, cpus_per_gpu=4
    )
    assert problems == [
        "CPU: the pools need 40 (rollout=2, grm=2, policy=4, value=2) but the cluster has 16"
    ]
