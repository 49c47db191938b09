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
    assert bundle_for(gplans["grm"], "gpu") == {"GPU": 2.0, "CPU": 1.0}


def test_missing_resources_names_what_is_short():
    cfg = load_config(["experiment=qwen2.5-7b"])
    problems = missing_resources(plan_pools(cfg.cluster), "gpu", {"CPU": 64.0, "GPU": 8.0})
    assert len(problems) == 1
    assert problems[0].startswith("GPU: the pools need 10 (rollout=2, grm=2, policy=4, value=2)")
    assert missing_resources(plan_pools(cfg.cluster), "gpu", {"CPU": 64.0, "GPU": 16.0}) == []
