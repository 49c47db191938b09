"""Builds the running system from a validated config: Ray, placement groups, vLLM
engines (rollout, and the GRM pool's engines or BT scorers), DeepSpeed learners, weight
sync, and the driver around them."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from cpe.cluster.faults import FaultLog
from cpe.cluster.placement import Placement
from cpe.cluster.session import init_ray
from cpe.cluster.storage import check_run_dir_shared
from cpe.config import CPEConfig
from cpe.data.cursor import PromptCursor
from cpe.data.records import Record
from cpe.learner.dist import RendezvousServer, rendezvous_host
from cpe.learner.group import RayLearnerGroup
from cpe.models.paths import cache_dir_for_actors, model_roles, resolve_model_path
from cpe.reward.pools import GRMPool, start_grm_pool
from cpe.rollout.launch import engine_pool
from cpe.rollout.pool import EnginePool
from cpe.trainer.checkpoint import CheckpointManager, read_driver_state
from cpe.trainer.driver import Driver
from cpe.trainer.makers import (
    MAKERS,
    MakerSettings,
    Prompter,
    max_updates_per_step,
    mini_batch_rows,
)
from cpe.trainer.metrics import MetricsLogger
from cpe.trainer.pipeline import PIPELINED_MAKERS
from cpe.trainer.timing import PhaseTimer
from cpe.weight_sync.backends import WEIGHT_SYNC_BACKENDS, SyncCheck


@dataclass
class System:
    placement: Placement
    rollout: EnginePool
    grm_pool: GRMPool | None  # vLLM engines or BT scorers (cpe.reward.pools); None: no model
    learners: RayLearnerGroup
    started_ray: bool
    faults: FaultLog  # actor restarts, shared by the pools and the driver

    def shutdown(self) -> None:
        import ray

        for pool in (self.rollout, self.grm_pool):
            if pool is not None:
                _quietly(pool.shutdown)
        self.learners.shutdown()
        self.placement.remove()
        if self.started_ray:
            ray.shutdown()


def _learner_group(
    placement: Placement, cfg: CPEConfig, paths: dict[str, str], steps: int
) -> RayLearnerGroup:
    import ray

    from cpe.learner.policy import PolicyWorker
    from cpe.learner.value import ValueWorker

    # Mini-batches as the paper counts them (learner.group.optimizer_updates); the LR
    # schedule's horizon assumes every step brings its full edit budget.
    optimizer_steps = steps * max_updates_per_step(cfg) * cfg.learner.ppo_epochs

    servers: list[RendezvousServer] = []  # the driver serves each pool's store

    def ranks(pool: str, cls, path: str | None, dtype: str) -> list:
        world = placement.slots(pool)
        if world == 0:
            return []
        servers.append(server := RendezvousServer(rendezvous_host()))
        actor = ray.remote(cls)
        return [
            actor.options(**placement.options_for(pool, r)).remote(
                r,
                world,
                server.host,
                server.port,
                path,
                cfg.learner,
                cfg.algorithm,
                device=cfg.cluster.device,
                dtype=dtype,
                total_optimizer_steps=optimizer_steps,
                model_cache_dir=cache_dir_for_actors(cfg.model.cache_dir),
            )
            for r in range(world)
        ]

    try:  # the stores served so far stop with a failed start
        model = cfg.model
        policy = ranks("policy", PolicyWorker, paths["policy"], model.policy.dtype)
        # No value ranks when the advantage estimator reads no values (model_roles has no "value").
        value = ranks("value", ValueWorker, paths.get("value"), model.value.dtype)
        reference = []
        if "reference" in paths and placement.slots("reference"):
            # A PolicyWorker that is never trained: same log-prob computation as the policy.
            reference = ranks("reference", PolicyWorker, paths["reference"], model.reference.dtype)
        pools = {"policy": policy, "value": value, "reference": reference}
        named = [(pool, r, a) for pool, ranks in pools.items() for r, a in enumerate(ranks)]
        pids = ray.get([a.pid.remote() for _, _, a in named])
    except BaseException:
        for server in servers:
            server.close()
        raise
    return RayLearnerGroup(
        policy,
        value,
        mini_batch_rows=mini_batch_rows(cfg),
        temperature=cfg.rollout.temperature,
        seed=cfg.trainer.seed,
        reference=reference,
        pids={(pool, r): pid for (pool, r, _), pid in zip(named, pids, strict=True)},
        rendezvous=servers,
    )


def model_paths(cfg: CPEConfig) -> dict[str, str]:
    """The path of every model this config runs, as configured: each actor resolves it
    on its own node (a fixture is built there), the driver through :func:`local_tokenizer`."""
    return {role: spec.path for role, spec in model_roles(cfg).items()}


def local_tokenizer(cfg: CPEConfig, path: str):
    """The tokenizer of a configured model path, on the driver's node."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_path(path, cfg.model.cache_dir))


def edit_prompt_budget(cfg: CPEConfig) -> int:
    """Token limit of an edit prompt: the user turn, an answer and a critique, plus the
    template around them."""
    r = cfg.rollout
    return r.max_prompt_tokens + r.max_new_tokens + cfg.grm.max_new_tokens + 256


def rollout_max_len(cfg: CPEConfig) -> int:
    """A rollout engine's longest sequence: an answer, or an edit after its prompt."""
    r = cfg.rollout
    return max(
        r.max_prompt_tokens + r.max_new_tokens, edit_prompt_budget(cfg) + r.edit_max_new_tokens
    )


def grm_max_len(cfg: CPEConfig) -> int:
    return cfg.grm.max_prompt_tokens + cfg.grm.max_new_tokens


def record_layout(placement: Placement, run_dir: str) -> None:
    """Check every node sees the run folder, then write which node hosts each slot to
    ``placement.json`` in it."""
    layout = placement.layout()
    check_run_dir_shared(placement, layout, run_dir)
    (Path(run_dir) / "placement.json").write_text(json.dumps(layout, indent=1))


def start_system(cfg: CPEConfig, paths: dict[str, str], total_steps: int) -> System:
    """Ray, the placement groups, the engines (rollout), the GRM pool's actors (vLLM
    engines or BT scorers, by grm.backend) and the learner ranks. If a part fails to
    start, what was started is stopped again: a caller that keeps its Ray session (a
    notebook, a test session) is left without stray actors or named placement groups."""
    import ray

    with ExitStack() as undo:
        started_ray = init_ray(cfg)
        if started_ray:
            undo.callback(ray.shutdown)
        placement = Placement(cfg.cluster).create()
        undo.callback(placement.remove)  # which also ends every actor placed in it
        record_layout(placement, cfg.logging.run_dir)
        faults = FaultLog(step=1)
        rollout = engine_pool(
            placement,
            "rollout",
            cfg,
            paths["policy"],
            cfg.model.policy.dtype,
            rollout_max_len(cfg),
            faults=faults,
        )
        undo.callback(_quietly, rollout.shutdown)
        grm_pool = start_grm_pool(placement, cfg, paths["grm"], faults) if "grm" in paths else None
        if grm_pool is not None:
            undo.callback(_quietly, grm_pool.shutdown)
        learners = _learner_group(placement, cfg, paths, total_steps)
        undo.pop_all()
    return System(placement, rollout, grm_pool, learners, started_ray, faults)


def _quietly(stop: Callable[[], None]) -> None:
    """A best-effort stop on the way out: the error that brought us here is the one to
    report."""
    try:
        stop()
    except Exception:  # noqa: BLE001
        pass


def build_driver(
    cfg: CPEConfig, train: list[Record], total_steps: int, resume: Path | None
) -> tuple[Driver, System]:
    """The running system and the driver around it, continuing from checkpoint ``resume``
    (verified by the caller: :func:`cpe.trainer.preflight.resume_checkpoint`) if given;
    on failure the system is shut down."""
    from cpe.prompts import PromptSet

    paths = model_paths(cfg)
    prompts = PromptSet.from_config(cfg.prompts)
    tokenizer = local_tokenizer(cfg, paths["policy"])
    prompter = Prompter(tokenizer, prompts, cfg.rollout.max_prompt_tokens, edit_prompt_budget(cfg))
    system = start_system(cfg, paths, total_steps)
    try:
        return _driver(cfg, system, paths, prompter, train, total_steps, resume), system
    except BaseException:
        system.shutdown()
        raise


def _grm(cfg: CPEConfig, system: System, paths: dict[str, str], prompter: Prompter):
    """A GRM scorer on the GRM pool's actors (or the configured endpoint / function)."""
    from cpe.reward.factory import build_grm

    return build_grm(
        cfg.grm,
        engine_pool=system.grm_pool,
        tokenizer=local_tokenizer(cfg, paths["grm"]) if "grm" in paths else None,
        prompts=prompter.prompts,
        max_prompt_tokens=cfg.grm.max_prompt_tokens,
    )


def _maker(cfg: CPEConfig, system: System, paths: dict[str, str], prompter: Prompter, timer):
    grm = _grm(cfg, system, paths, prompter)
    # Rows split evenly over every rank pool that trains (ZeRO's equal shards).
    divisor = math.lcm(*(n for n in (system.placement.slots(p) for p in ("policy", "value")) if n))
    settings = MakerSettings.from_config(cfg, divisor)
    args = (system.rollout, grm, prompter, settings, timer)
    if cfg.trainer.pipeline_chunks > 1:
        return PIPELINED_MAKERS[cfg.algorithm.mode](*args, chunks=cfg.trainer.pipeline_chunks)
    return MAKERS[cfg.algorithm.mode](*args)


def _weight_sync(cfg: CPEConfig, system: System, check: SyncCheck):
    nccl = cfg.cluster.weight_sync == "nccl"
    kwargs = {"tp_size": cfg.cluster.pools.rollout.devices_per_engine} if nccl else {}
    backend = WEIGHT_SYNC_BACKENDS[cfg.cluster.weight_sync]
    sync = backend(
        system.learners,
        system.rollout,
        check,
        timeout_s=cfg.cluster.sync_timeout_s,
        **kwargs,
    )
    # A rebuilt rollout engine starts from the base model: the sync loads the policy in.
    system.rollout.bring_up = sync.bring_up
    system.rollout.rebuild_refusal = sync.rebuild_refusal()
    return sync


def _driver(
    cfg: CPEConfig,
    system: System,
    paths: dict[str, str],
    prompter: Prompter,
    train: list[Record],
    total_steps: int,
    resume: Path | None,
) -> Driver:
    timer = PhaseTimer()
    maker = _maker(cfg, system, paths, prompter, timer)
    tok = prompter.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    check_prompts = [prompter.policy_ids(rec) for rec in train[:2]]
    sync = _weight_sync(
        cfg, system, SyncCheck(check_prompts, cfg.trainer.sync_check_tokens, pad_id)
    )
    checkpoints = CheckpointManager(cfg.logging.run_dir, keep=cfg.trainer.keep_checkpoints)
    state = read_driver_state(resume) if resume else {"step": 0}
    lg = cfg.logging
    logger = MetricsLogger(
        lg.run_dir,
        lg.wandb_mode,
        lg.wandb_project,
        lg.wandb_entity,
        config=_plain(cfg),
        resume_step=state["step"],
        group=cfg.logging.wandb_group or cfg.name,
    )
    cursor = PromptCursor(train, cfg.trainer.rollout_batch_prompts, seed=cfg.data.seed)
    driver = Driver(
        cfg,
        maker,
        system.learners,
        sync,
        cursor,
        checkpoints,
        logger,
        timer,
        pad_id,
        total_steps,
        faults=system.faults,
    )
    driver.evaluator = _evaluator(cfg, system, paths, prompter) if cfg.trainer.eval_every else None
    if resume:
        driver.restore(resume, state)
        system.faults.step = state["step"] + 1  # a restart now counts in the next row
        sync.push(state["step"])  # engines start from the base weights; bring them level
    return driver


def _evaluator(cfg: CPEConfig, system: System, paths: dict[str, str], prompter: Prompter):
    """The eval set, the current policy's answerer and the judge on the running engines."""
    from cpe.eval.answers import PolicyAnswerer, eval_sampling
    from cpe.eval.evaluation import EvalSettings, Evaluation
    from cpe.eval.judges import JUDGE_BACKENDS
    from cpe.eval.plan import judgment_meta, resolve_reference
    from cpe.eval.sets import load_eval_set
    from cpe.trainer.evaluator import TrainingEvaluator

    e = cfg.eval
    records = load_eval_set(e)
    settings = EvalSettings(e.lc_method, e.judge.both_orders, e.probe, cfg.logging.progress)
    evaluation = Evaluation(Path(cfg.logging.run_dir) / "eval" / "train", records, settings)
    sampling = eval_sampling(cfg.rollout)
    answerer = PolicyAnswerer(system.rollout, prompter.tokenizer, prompter.prompts, sampling)
    tokenizer = local_tokenizer(cfg, paths["grm"]) if e.judge.backend == "vllm" else None
    judge = JUDGE_BACKENDS[e.judge.backend](e.judge, prompter.prompts, system.grm_pool, tokenizer)
    reference = resolve_reference(cfg, records)
    meta = judgment_meta(cfg, reference)
    grm = _grm(cfg, system, paths, prompter) if e.grm_scores else None
    return TrainingEvaluator(cfg, evaluation, answerer, judge, reference, meta, grm)


def _plain(cfg: CPEConfig) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
