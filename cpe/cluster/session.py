"""The Ray session: joining a cluster or starting a local one, and the environment
every actor process gets."""

from __future__ import annotations

import logging
import os

from cpe.config import CPEConfig
from cpe.logs import quiet_third_party


def worker_env() -> dict[str, str]:
    """Environment every actor gets, the same on every node (no path of the driver's).
    DeepSpeed's JIT-built ops land in torch's per-user cache unless TORCH_EXTENSIONS_DIR
    says otherwise."""
    env = {
        "TOKENIZERS_PARALLELISM": "false",
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        # glibc's per-thread arenas keep freed activation memory; fewer arenas give it back.
        "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),
    }
    for key in ("OMP_NUM_THREADS", "TMPDIR", "VLLM_CPU_KVCACHE_SPACE", "TORCH_EXTENSIONS_DIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def is_ray_client(address: str | None) -> bool:
    """A Ray Client address (``ray://``): its driver is not a node of the cluster."""
    return bool(address) and address.startswith("ray://")


def refuse_ray_client(address: str | None) -> None:
    """The driver serves the learners' rendezvous and writes the run folder, so it runs
    on a node of the cluster, never through Ray Client."""
    if is_ray_client(address):
        raise ValueError(
            f"{address}: a Ray Client address (cluster.address or RAY_ADDRESS). The driver "
            "serves the learners' rendezvous and writes the run folder, so it must run on "
            "a node of the cluster: ray job submit (python -m cpe.launch submit), or "
            "cluster.address=auto on a node"
        )


def init_ray(cfg: CPEConfig) -> bool:
    """Connect to a cluster (``cluster.address`` or ``$RAY_ADDRESS``) or start a local
    Ray; True if this process called ``ray.init``."""
    import ray

    if ray.is_initialized():
        return False
    cl = cfg.cluster
    address = cl.address or os.environ.get("RAY_ADDRESS")
    refuse_ray_client(address)
    runtime_env = {"env_vars": {**worker_env(), **quiet_third_party(cfg.cluster.device)}}
    if address:
        # A cluster's own resources count; Ray reads RAY_ADDRESS (set inside `ray job
        # submit` jobs) itself when cluster.address is unset.
        ray.init(address=cl.address, runtime_env=runtime_env, logging_level=logging.WARNING)
        return True
    store = cl.object_store_mb * 1024**2 if cl.object_store_mb else None
    resources = (
        {"num_gpus": cl.devices_per_node}
        if cl.device == "gpu"
        else {"num_cpus": cl.devices_per_node}
    )
    ray.init(
        include_dashboard=False,
        object_store_memory=store,
        runtime_env=runtime_env,
        logging_level=logging.WARNING,
        **resources,
    )
    return True
