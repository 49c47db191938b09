"""Starting vLLM engines in a placement pool: the settings each engine gets from the
config and one Ray actor per slot. Used by training (the rollout and GRM pools) and by
evaluation (policies, judge and GRM on the same pools)."""

from __future__ import annotations

from cpe.cluster.faults import FaultLog
from cpe.cluster.placement import Placement
from cpe.config import CPEConfig
from cpe.models.paths import cache_dir_for_actors
from cpe.rollout.pool import EnginePool
from cpe.rollout.settings import EngineSettings


def engine_settings(
    cfg: CPEConfig, pool: str, model_path: str, dtype: str, max_len: int, index: int
) -> EngineSettings:
    """What engine ``index`` of ``pool`` ("rollout" or "grm") is started with
    (``model_path``: a folder every node has, or fixture:NAME built on the engine's node)."""
    gpu = cfg.cluster.device == "gpu"
    nccl = pool == "rollout" and cfg.cluster.weight_sync == "nccl"
    # Adapter sync: rollout engines serve the trained LoRA adapter on the base weights.
    adapter = pool == "rollout" and cfg.cluster.weight_sync == "adapter"
    return EngineSettings(
        model_path=model_path,
        dtype=dtype,
        seed=cfg.rollout.seed + index,
        device=cfg.cluster.device,
        max_model_len=max_len,
        kv_cache_gib=cfg.rollout.kv_cache_gib,
        gpu_memory_utilization=cfg.rollout.gpu_memory_utilization,
        enforce_eager=cfg.rollout.enforce_eager,
        tensor_parallel_size=getattr(cfg.cluster.pools, pool).devices_per_engine if gpu else 1,
        weight_transfer_backend="nccl" if nccl else None,
        model_cache_dir=cache_dir_for_actors(cfg.model.cache_dir),
        lora_rank=cfg.learner.lora.rank if adapter else 0,
    )


def engine_pool(
    placement: Placement,
    pool: str,
    cfg: CPEConfig,
    *settings_args,
    faults: FaultLog | None = None,
) -> EnginePool:
    """The engines of ``pool``, one per placement slot (settings: see :func:`engine_settings`);
    an engine that dies is started again on its slot, ``cluster.engine_restarts`` times
    per call at most."""
    import ray

    from cpe.rollout.engine import VLLMEngine

    actor = ray.remote(VLLMEngine)

    def start(index: int):
        return actor.options(**placement.options_for(pool, index)).remote(
            engine_settings(cfg, pool, *settings_args, index=index)
        )

    return EnginePool(
        [start(i) for i in range(placement.slots(pool))],
        start=start,
        restarts=cfg.cluster.engine_restarts,
        name=pool,
        faults=faults,
    )
