"""Builds the running system from a validated config: Ray, placement groups, vLLM
engines (rollout + GRM), DeepSpeed learners, weight sync, and the driver around them."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from cpe.cluster.placement import Placement
from cpe.config import CPEConfig
from cpe.data.cursor import PromptCursor
from cpe.data.records import Record
from cpe.learner.group import LearnerGroup
from cpe.models.paths import resolve_model_path
from cpe.trainer.checkpoint import CheckpointManager, read_driver_state, resolve_resume
from cpe.trainer.driver import Driver
from cpe.trainer.makers import MAKERS, MakerSettings, Prompter
from cpe.trainer.metrics import MetricsLogger
from cpe.trainer.timing import PhaseTimer
from cpe.weight_sync.backends import WEIGHT_SYNC_BACKENDS

CACHE = Path(".cache").resolve()


def worker_env() -> dict[str, str]:
    """Environment every actor gets: one thread each on small machines, shared caches."""
    env = {
        "TOKENIZERS_PARALLELISM": "false",
        "TORCH_EXTENSIONS_DIR": str(CACHE / "torch_extensions"),
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "VLLM_LOGGING_LEVEL": os.environ.get("VLLM_LOGGING_LEVEL", "WARNING"),
        # glibc's per-thread arenas keep freed activation memory; fewer arenas give it back.
        "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),
    }
    for key in ("OMP_NUM_THREADS", "TMPDIR", "VLLM_CPU_KVCACHE_SPACE"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def init_ray(cfg: CPEConfig) -> bool:
    """Connect to (address set) or start a local Ray; True if this process started it."""
    import ray

    if ray.is_initialized():
        return False
    cl = cfg.cluster
    runtime_env = {"env_vars": worker_env()}
    if cl.address:
        ray.init(address=cl.address, runtime_env=runtime_env)
        return True
    store = cl.object_store_mb * 1024**2 if cl.object_store_mb else None
    resources = (
        {"num_gpus": cl.devices_per_node}
        if cl.device == "gpu"
        else {"num_cpus": cl.devices_per_node}
    )
    ray.init(
        include_dashboard=False, object_store_memory=store, runtime_env=runtime_env, **resources
    )
    return True


@dataclass
class System:
    placement: Placement
    rollout: object
    grm_pool: object | None
    learners: LearnerGroup
    started_ray: bool
    engines: list = field(default_factory=list)

    def shutdown(self) -> None:
        import ray

        for pool in (self.rollout, self.grm_pool):
            if pool is not None:
                try:
                    pool.shutdown()
                except Exception:  # noqa: BLE001 - best effort on the way out
                    pass
        self.learners.shutdown()
        self.placement.remove()
        if self.started_ray:
            ray.shutdown()


def _engine_pool(
    placement: Placement, pool: str, cfg: CPEConfig, model_path: str, dtype: str, max_len: int
):
    from cpe.rollout.engine import VLLMEngineActor
    from cpe.rollout.pool import EnginePool

    actors = [
        VLLMEngineActor.options(**placement.options_for(pool, i)).remote(
            model_path,
            dtype=dtype,
            seed=cfg.rollout.seed + i,
            device=cfg.cluster.device,
            max_model_len=max_len,
            kv_cache_gib=cfg.rollout.kv_cache_gib,
            gpu_memory_utilization=cfg.rollout.gpu_memory_utilization,
            enforce_eager=cfg.rollout.enforce_eager,
            tensor_parallel_size=getattr(cfg.cluster.pools, pool).devices_per_engine
            if cfg.cluster.device == "gpu"
            else 1,
            weight_transfer_backend="nccl"
            if (cfg.cluster.device == "gpu" and pool == "rollout")
            else None,
        )
        for i in range(placement.slots(pool))
    ]
    return EnginePool(actors)


def _learner_group(
    placement: Placement, cfg: CPEConfig, policy_path: str, value_path: str, steps: int
) -> LearnerGroup:
    import ray

    from cpe.learner.policy import PolicyWorker
    from cpe.learner.value import ValueWorker

    mini = cfg.trainer.rollout_batch_prompts // cfg.learner.mini_batch_prompts
    optimizer_steps = steps * mini * cfg.learner.ppo_epochs

    def ranks(pool: str, cls, path: str, dtype: str) -> list:
        world = placement.slots(pool)
        master = _bundle_address(placement, pool)
        actor = ray.remote(cls)
        return [
            actor.options(**placement.options_for(pool, r)).remote(
                r,
                world,
                master[0],
                master[1],
                path,
                cfg.learner,
                cfg.algorithm,
                device=cfg.cluster.device,
                dtype=dtype,
                total_optimizer_steps=optimizer_steps,
            )
            for r in range(world)
        ]

    policy = ranks("policy", PolicyWorker, policy_path, cfg.model.policy.dtype)
    value = ranks("value", ValueWorker, value_path, cfg.model.value.dtype)
    reference = []
    if cfg.model.reference is not None and placement.slots("reference"):
        # A PolicyWorker that is never trained: same log-prob computation as the policy.
        ref_path = resolve_model_path(
            cfg.model.reference.path, cfg.model.cache_dir, "model.reference.path"
        )
        reference = ranks("reference", PolicyWorker, ref_path, cfg.model.reference.dtype)
    ray.get([a.ping.remote() for a in policy + value + reference])
    return LearnerGroup(
        policy,
        value,
        num_mini_batches=mini,
        temperature=cfg.rollout.temperature,
        seed=cfg.trainer.seed,
        reference=reference,
    )


def _bundle_address(placement: Placement, pool: str) -> tuple[str, int]:
    """IP and a free port on the node of the pool's bundle 0 (where rank 0 will live)."""
    import ray

    from cpe.learner.dist import free_port, node_ip

    @ray.remote(num_cpus=0)
    def probe() -> tuple[str, int]:
        return node_ip(), free_port("0.0.0.0")

    options = {**placement.options_for(pool, 0), "num_cpus": 0, "num_gpus": 0}
    return ray.get(probe.options(**options).remote())


def build_driver(cfg: CPEConfig, train: list[Record], total_steps: int) -> tuple[Driver, System]:
    from transformers import AutoTokenizer

    from cpe.prompts import PromptSet
    from cpe.reward.factory import build_grm

    paths = {
        role: resolve_model_path(
            getattr(cfg.model, role).path, cfg.model.cache_dir, f"model.{role}.path"
        )
        for role in ("policy", "grm", "value")
    }
    prompts = PromptSet.from_config(cfg.prompts)
    tokenizer = AutoTokenizer.from_pretrained(paths["policy"])
    started_ray = init_ray(cfg)
    placement = Placement(cfg.cluster).create()
    r = cfg.rollout
    # The edit prompt holds the user turn, an answer and a critique, plus the template.
    edit_prompt_budget = r.max_prompt_tokens + r.max_new_tokens + cfg.grm.max_new_tokens + 256
    rollout = _engine_pool(
        placement,
        "rollout",
        cfg,
        paths["policy"],
        cfg.model.policy.dtype,
        max(r.max_prompt_tokens + r.max_new_tokens, edit_prompt_budget + r.edit_max_new_tokens),
    )
    grm_pool = None
    if cfg.grm.backend == "vllm":
        grm_pool = _engine_pool(
            placement,
            "grm",
            cfg,
            paths["grm"],
            cfg.model.grm.dtype,
            cfg.grm.max_prompt_tokens + cfg.grm.max_new_tokens,
        )
    learners = _learner_group(placement, cfg, paths["policy"], paths["value"], total_steps)
    system = System(placement, rollout, grm_pool, learners, started_ray)
    grm = build_grm(
        cfg.grm,
        engine_pool=grm_pool,
        tokenizer=AutoTokenizer.from_pretrained(paths["grm"]),
        prompts=prompts,
        max_prompt_tokens=cfg.grm.max_prompt_tokens,
    )
    timer = PhaseTimer()
    prompter = Prompter(tokenizer, prompts, r.max_prompt_tokens, edit_prompt_budget)
    divisor = math.lcm(placement.slots("policy"), placement.slots("value"))
    a = cfg.algorithm
    settings = MakerSettings(
        r.n,
        r.temperature,
        r.top_p,
        r.max_new_tokens,
        r.edit_max_new_tokens,
        a.selection,
        a.edit_ratio,
        divisor,
        cfg.trainer.seed,
    )
    maker = MAKERS[a.mode](rollout, grm, prompter, settings, timer)
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    sync_kwargs = (
        {"tp_size": cfg.cluster.pools.rollout.devices_per_engine}
        if cfg.cluster.device == "gpu"
        else {}
    )
    sync = WEIGHT_SYNC_BACKENDS[cfg.cluster.weight_sync](
        learners,
        rollout,
        [prompter.policy_ids(rec) for rec in train[:2]],
        cfg.trainer.sync_check_tokens,
        pad_id,
        **sync_kwargs,
    )
    checkpoints = CheckpointManager(cfg.logging.run_dir, keep=cfg.trainer.keep_checkpoints)
    resume = resolve_resume(cfg.trainer.resume, checkpoints)
    state = read_driver_state(resume) if resume else {"step": 0}
    logger = MetricsLogger(
        cfg.logging.run_dir,
        cfg.logging.wandb_mode,
        cfg.logging.wandb_project,
        cfg.logging.wandb_entity,
        config=_plain(cfg),
        resume_step=state["step"],
    )
    cursor = PromptCursor(train, cfg.trainer.rollout_batch_prompts, seed=cfg.data.seed)
    driver = Driver(
        cfg, maker, learners, sync, cursor, checkpoints, logger, timer, pad_id, total_steps
    )
    if resume:
        driver.restore(resume, state)
        sync.push(state["step"])  # engines start from the base weights; bring them level
    return driver, system


def _plain(cfg: CPEConfig) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
