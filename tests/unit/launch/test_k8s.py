"""KubeRay manifests follow the config's pools; the committed examples are current."""

import json

import pytest
import yaml

from cpe.compose import PRESETS, load_config
from cpe.launch.k8s import (
    EXAMPLE_PRESETS,
    KINDS,
    Site,
    example_path,
    k8s_name,
    manifests,
    render,
    worker_groups,
)


def _pool_devices(cfg) -> dict[str, int]:
    pools = cfg.cluster.pools
    out = {
        n: getattr(pools, n).engines * getattr(pools, n).devices_per_engine
        for n in ("rollout", "grm")
    }
    out |= {
        n: getattr(pools, n).ranks * getattr(pools, n).devices_per_rank
        for n in ("policy", "value", "reference")
    }
    return {n: d for n, d in out.items() if d}


def _spec(docs, kind):
    body = docs[1]
    return body["spec"] if kind == "raycluster" else body["spec"]["rayClusterSpec"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("preset", PRESETS)
def test_groups_hold_exactly_each_pools_devices(preset, kind):
    cfg = load_config([f"experiment={preset}"])
    docs = list(yaml.safe_load_all(render(cfg, [f"experiment={preset}"], kind)))
    assert [d["apiVersion"] for d in docs] == ["v1", "ray.io/v1"]
    assert docs[1]["kind"] == {"raycluster": "RayCluster", "rayjob": "RayJob"}[kind]
    spec = _spec(docs, kind)
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    assert "nvidia.com/gpu" not in head["template"]["spec"]["containers"][0]["resources"]["limits"]
    gpu = cfg.cluster.device == "gpu"
    held = {}
    for group in spec["workerGroupSpecs"]:
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        per_pod = int(limits["nvidia.com/gpu"]) if gpu else int(limits["cpu"])
        assert gpu == ("nvidia.com/gpu" in limits)
        assert group["minReplicas"] == group["replicas"] == group["maxReplicas"]
        held[group["groupName"]] = per_pod * group["replicas"]
    assert held == _pool_devices(cfg)


def test_a_tensor_parallel_engine_gets_one_pod_and_learners_fill_nodes():
    cfg = load_config(
        ["experiment=qwen2.5-7b", "cluster.pools.policy.ranks=16", "cluster.num_nodes=3"]
    )
    groups = {g.pool: (g.devices_per_pod, g.replicas) for g in worker_groups(cfg)}
    # a pool that fits a node is packed onto one (STRICT_PACK), as cpe.cluster.placement does
    assert groups == {"rollout": (2, 1), "grm": (2, 1), "policy": (8, 2), "value": (2, 1)}


def test_a_pool_larger_than_a_node_keeps_its_bundles_whole():
    cfg = load_config(
        [
            "experiment=qwen2.5-7b",
            "cluster.pools.rollout.engines=3",
            "cluster.pools.rollout.devices_per_engine=3",
            "cluster.num_nodes=3",
        ]
    )
    groups = {g.pool: (g.devices_per_pod, g.replicas) for g in worker_groups(cfg)}
    assert groups["rollout"] == (6, 2)  # 2 engines of 3 GPUs per 8-GPU node, 3 engines


def test_the_rayjob_trains_the_preset_into_the_shared_volume():
    cfg = load_config(["experiment=qwen2.5-7b", "trainer.epochs=1"])
    job = manifests(cfg, ["experiment=qwen2.5-7b", "trainer.epochs=1"], "rayjob")[1]
    assert job["spec"]["entrypoint"] == (
        "python -m cpe.train experiment=qwen2.5-7b trainer.epochs=1 "
        "logging.run_dir=/runs/cpe-qwen2-5-7b cluster.pin_pools=true"
    )
    assert job["spec"]["shutdownAfterJobFinishes"] is True
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600
    assert job["spec"]["submitterConfig"] == {"backoffLimit": 2}
    pod = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]
    assert pod["securityContext"] == {"fsGroup": 1000}  # the images' user writes /runs
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts == {"dshm": "/dev/shm", "runs": "/runs"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "32Gi"}
    assert volumes["runs"]["persistentVolumeClaim"] == {"claimName": "cpe-runs"}


def test_a_given_run_dir_is_kept_on_the_volume_and_refused_off_it():
    overrides = ["experiment=qwen2.5-7b", "logging.run_dir=/runs/exp1", "cluster.pin_pools=false"]
    job = manifests(load_config(overrides), overrides, "rayjob")[1]
    assert job["spec"]["entrypoint"] == (
        "python -m cpe.train experiment=qwen2.5-7b logging.run_dir=/runs/exp1 "
        "cluster.pin_pools=false"
    )
    off = ["experiment=qwen2.5-7b", "logging.run_dir=runs/exp1"]
    with pytest.raises(ValueError, match=r"logging.run_dir=runs/exp1 is not on the run volume"):
        manifests(load_config(off), off, "rayjob")


def test_each_worker_group_offers_its_pool_resource():
    cfg = load_config(["experiment=qwen2.5-7b"])
    spec = manifests(cfg, ["experiment=qwen2.5-7b"], "raycluster")[1]["spec"]
    offered = {
        g["groupName"]: json.loads(g["rayStartParams"]["resources"].strip("'"))
        for g in spec["workerGroupSpecs"]
    }
    for group in worker_groups(cfg):
        assert offered[group.pool] == {f"cpe_pool_{group.pool}": group.devices_per_pod}
    assert "resources" not in spec["headGroupSpec"]["rayStartParams"]


def test_names_are_dns_labels():
    assert k8s_name("cpe-qwen2.5-7b") == "cpe-qwen2-5-7b"
    assert k8s_name("CPE__Tiny CPU!") == "cpe-tiny-cpu"


def test_an_unknown_kind_is_named():
    with pytest.raises(ValueError, match=r"--kind must be one of \['raycluster', 'rayjob'\]"):
        manifests(load_config(["experiment=qwen2.5-7b"]), [], "deployment")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("preset", EXAMPLE_PRESETS)
def test_committed_examples_are_current(preset, kind):
    overrides = [f"experiment={preset}"]
    assert example_path(preset, kind).read_text() == render(
        load_config(overrides), overrides, kind
    ), "launch/k8s/ is stale: run python -m cpe.launch k8s --examples"


def test_the_run_volume_takes_a_storage_class():
    cfg = load_config(["experiment=qwen2.5-7b"])
    pvc = manifests(cfg, [], "raycluster", Site(storage_class="nfs"))[0]
    assert pvc["spec"]["storageClassName"] == "nfs"
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert "storageClassName" not in manifests(cfg, [], "raycluster")[0]["spec"]


def test_pods_must_offer_the_cpus_the_bundles_reserve():
    cfg = load_config(["experiment=qwen2.5-7b", "cluster.cpus_per_gpu=12"])
    with pytest.raises(ValueError, match="cluster.cpus_per_gpu=12 is more than the 10 CPUs"):
        manifests(cfg, ["experiment=qwen2.5-7b"], "raycluster")
