"""The start-up check of the training nodes: models, data, rollout, GRM, algorithm,
learner, trainer, cluster and pools, logging, prompts, keys and finite numbers."""

from __future__ import annotations

import logging
import math
from dataclasses import fields, is_dataclass
from pathlib import Path

from cpe.cluster.placement import ENGINE_POOLS, RANK_POOLS, plan_pools
from cpe.cluster.session import is_ray_client
from cpe.config import MISSING_PATH, CPEConfig
from cpe.keys import key_problems, plaintext_warnings
from cpe.models.paths import model_roles
from cpe.reward.pools import runs_grm_model
from cpe.validate.checks import (
    ATTENTION,
    DEVICES,
    DTYPES,
    LR_SCHEDULES,
    WANDB_MODES,
    ZERO_STAGES,
    Checker,
    check_resume,
    registry_choices,
)

log = logging.getLogger(__name__)


def _models(cfg: CPEConfig, c: Checker) -> None:
    for role, spec in model_roles(cfg).items():
        c.require(spec.path not in ("", MISSING_PATH), f"model.{role}.path", "is not set")
        c.choice(spec.dtype, f"model.{role}.dtype", DTYPES)
    if cfg.algorithm.kl.coef > 0:
        c.require(
            cfg.model.reference.path is not None,
            "model.reference.path",
            "algorithm.kl.coef > 0 needs a reference model: set model.reference.path",
        )


def _data(cfg: CPEConfig, c: Checker) -> None:
    d = cfg.data
    c.require(d.train_path not in ("", MISSING_PATH), "data.train_path", "is not set")
    if d.format is not None:
        c.choice(d.format, "data.format", registry_choices()["data_format"])
    if d.max_train_records is not None:
        c.positive(d.max_train_records, "data.max_train_records")


def _rollout(cfg: CPEConfig, c: Checker) -> None:
    r = cfg.rollout
    c.positive(r.n, "rollout.n")
    c.require(r.temperature > 0, "rollout.temperature", f"{r.temperature} must be > 0")
    c.require(0 < r.top_p <= 1, "rollout.top_p", f"{r.top_p} must be in (0, 1]")
    c.positive(r.max_new_tokens, "rollout.max_new_tokens")
    c.positive(r.edit_max_new_tokens, "rollout.edit_max_new_tokens")
    c.positive(r.max_prompt_tokens, "rollout.max_prompt_tokens")
    c.in_range(r.gpu_memory_utilization, "rollout.gpu_memory_utilization", 0.05, 0.99)
    c.positive(r.kv_cache_gib, "rollout.kv_cache_gib")
    c.non_negative(r.eval_temperature, "rollout.eval_temperature")


def _grm(cfg: CPEConfig, c: Checker) -> None:
    g = cfg.grm
    choices = registry_choices()
    c.choice(g.backend, "grm.backend", choices["grm_backend"])
    c.choice(g.mode, "grm.mode", choices["grm_mode"])
    c.require(
        len(g.weights) == 3, "grm.weights", f"needs 3 weights (H, P, N), got {len(g.weights)}"
    )
    c.require(
        math.isclose(sum(g.weights), 1.0, abs_tol=1e-6) if len(g.weights) == 3 else True,
        "grm.weights",
        f"{list(g.weights)} should sum to 1 (paper: [0.35, 0.40, 0.25])",
    )
    c.require(g.critique_temperature >= 0, "grm.critique_temperature", "must be >= 0")
    c.require(g.score_temperature >= 0, "grm.score_temperature", "must be >= 0")
    c.non_negative(g.retries, "grm.retries")
    c.non_negative(g.backoff_s, "grm.backoff_s")
    c.in_range(g.max_invalid_share, "grm.max_invalid_share", 0.0, 1.0)
    c.positive(g.max_new_tokens, "grm.max_new_tokens")
    c.positive(g.max_prompt_tokens, "grm.max_prompt_tokens")
    if g.guided_decoding and g.backend == "vllm":
        c.require(
            g.max_new_tokens >= 96,
            "grm.max_new_tokens",
            f"{g.max_new_tokens} leaves no room for a critique under guided decoding (need >= 96)",
        )
    if g.backend == "python":
        _python_function(g.python_function, c)
    if g.backend == "bt":
        _bt_reward_model(cfg, c)
    if g.backend == "openai":
        c.positive(g.openai.concurrency, "grm.openai.concurrency")
        c.positive(g.openai.timeout_s, "grm.openai.timeout_s")
        c.non_negative(g.openai.max_retries, "grm.openai.max_retries")


def _bt_reward_model(cfg: CPEConfig, c: Checker) -> None:
    """A scalar reward model: PPO only, and a cpe reward model folder (the fixtures are
    plain LMs; a folder only the nodes see is checked there, by load_reward_model)."""
    from cpe.reward.bt_model import is_reward_model

    c.require(
        cfg.algorithm.mode == "ppo",
        "grm.backend",
        f"bt gives rewards only, but algorithm.mode={cfg.algorithm.mode} needs critiques "
        "from a generative GRM: use algorithm=ppo, or grm=vllm|openai|python",
    )
    path = cfg.model.grm.path
    c.require(
        not path.startswith("fixture:") and (not Path(path).is_dir() or is_reward_model(path)),
        "model.grm.path",
        f"{path!r} is not a cpe reward model (no reward_head.safetensors and "
        "reward_norm.json): train one with python -m cpe.sft sft.task=bt ...",
    )
    per = cfg.cluster.pools.grm.devices_per_engine
    c.require(
        cfg.cluster.device != "gpu" or per == 1,
        "cluster.pools.grm.devices_per_engine",
        f"{per}, but a BT scorer runs on one GPU: set it to 1 (more engines score in parallel)",
    )


def _python_function(spec: str | None, c: Checker) -> None:
    """Import it now: a typo costs a second here, not a cluster start-up."""
    from cpe.reward.base import GRMError
    from cpe.reward.python_backend import load_function

    if not spec:
        c.require(False, "grm.python_function", "is not set")
        return
    try:
        load_function(spec)
    except GRMError as exc:
        c.exception("grm.python_function", exc)


def _algorithm(cfg: CPEConfig, c: Checker) -> None:
    a = cfg.algorithm
    choices = registry_choices()
    c.choice(a.mode, "algorithm.mode", choices["mode"])
    c.choice(a.selection, "algorithm.selection", choices["selection"])
    c.choice(a.advantage, "algorithm.advantage", choices["advantage"])
    c.choice(a.policy_loss, "algorithm.policy_loss", choices["policy_loss"])
    if a.policy_loss == "ppo" and a.mode != "ppo":
        c.require(
            False,
            "algorithm.policy_loss",
            f"'ppo' has no off-policy term for edited rows: use it only with "
            f"algorithm.mode=ppo (algorithm.mode={a.mode!r})",
        )
    c.choice(a.kl.kind, "algorithm.kl.kind", choices["kl"])
    c.in_range(a.edit_ratio, "algorithm.edit_ratio", 0.0, 1.0)
    c.in_range(a.gamma, "algorithm.gamma", 0.0, 1.0)
    c.in_range(a.lam, "algorithm.lam", 0.0, 1.0)
    c.in_range(a.clip_low, "algorithm.clip_low", 0.0, 1.0)
    c.require(a.clip_high >= 0, "algorithm.clip_high", f"{a.clip_high} must be >= 0")
    c.require(a.value_clip > 0, "algorithm.value_clip", f"{a.value_clip} must be > 0")
    c.non_negative(a.kl.coef, "algorithm.kl.coef")
    c.non_negative(a.entropy_coef, "algorithm.entropy_coef")
    if a.edit_ratio_cap is not None:
        c.positive(a.edit_ratio_cap, "algorithm.edit_ratio_cap")


def _learner(cfg: CPEConfig, c: Checker) -> None:
    lr, pools = cfg.learner, cfg.cluster.pools
    c.choice(lr.zero_stage, "learner.zero_stage", ZERO_STAGES)
    c.choice(lr.lr_schedule, "learner.lr_schedule", LR_SCHEDULES)
    c.positive(lr.actor_lr, "learner.actor_lr")
    c.positive(lr.critic_lr, "learner.critic_lr")
    c.positive(lr.micro_batch_size, "learner.micro_batch_size")
    c.non_negative(lr.micro_batch_tokens, "learner.micro_batch_tokens")
    c.non_negative(lr.logprob_chunk, "learner.logprob_chunk")
    c.choice(lr.attn_implementation, "learner.attn_implementation", ATTENTION)
    if lr.attn_implementation == "flash_attention_2":
        c.require(
            cfg.cluster.device == "gpu",
            "learner.attn_implementation",
            "flash_attention_2 runs on GPU only (cluster.device=cpu): use sdpa",
        )
    c.positive(lr.zero_bucket_elements, "learner.zero_bucket_elements")
    c.positive(lr.ppo_epochs, "learner.ppo_epochs")
    c.positive(lr.grad_clip, "learner.grad_clip")
    c.positive(lr.mini_batch_prompts, "learner.mini_batch_prompts")
    c.non_negative(lr.weight_decay, "learner.weight_decay")
    c.non_negative(lr.warmup_steps, "learner.warmup_steps")
    _lora(lr, c)
    c.require(
        not (lr.shared_prefix and lr.gradient_checkpointing),
        "learner.shared_prefix",
        "needs learner.gradient_checkpointing=false (checkpointed layers drop the shared "
        "prompt cache); set one of them to false",
    )
    batch = cfg.trainer.rollout_batch_prompts
    if lr.mini_batch_prompts > 0 and batch % lr.mini_batch_prompts:
        c.require(
            False,
            "learner.mini_batch_prompts",
            f"{lr.mini_batch_prompts} must divide trainer.rollout_batch_prompts={batch}",
        )
    originals = lr.mini_batch_prompts * cfg.rollout.n
    for role in ("policy", "value"):
        ranks = getattr(pools, role).ranks
        if ranks > 0 and originals % ranks:
            c.require(
                False,
                "learner.mini_batch_prompts",
                f"mini-batch of {lr.mini_batch_prompts} prompts x rollout.n={cfg.rollout.n} = "
                f"{originals} sequences is not divisible by cluster.pools.{role}.ranks={ranks}",
            )


def _lora(lr, c: Checker) -> None:
    lora = lr.lora
    c.non_negative(lora.rank, "learner.lora.rank")
    if lora.rank <= 0:
        return
    c.positive(lora.alpha, "learner.lora.alpha")
    c.require(bool(lora.target_modules), "learner.lora.target_modules", "is empty")
    from cpe.learner.lora import UNSUPPORTED_TARGETS

    bad = [t for t in lora.target_modules if t in UNSUPPORTED_TARGETS]
    c.require(
        not bad,
        "learner.lora.target_modules",
        f"{', '.join(bad)}: adapters go on linear layers only (not embeddings or the LM head)",
    )
    # The merged export reads whole base weights; under ZeRO-3 they are partitioned.
    c.require(
        lr.zero_stage < 3,
        "learner.lora.rank",
        f"LoRA runs with learner.zero_stage 0-2 (got {lr.zero_stage}): the adapters' small "
        "optimizer state is what ZeRO-3 would save",
    )


def _trainer(cfg: CPEConfig, c: Checker) -> None:
    t = cfg.trainer
    c.positive(t.rollout_batch_prompts, "trainer.rollout_batch_prompts")
    c.require(t.total_steps is None or t.total_steps > 0, "trainer.total_steps", "must be > 0")
    c.positive(t.epochs, "trainer.epochs")
    c.positive(t.save_every, "trainer.save_every")
    c.positive(t.keep_checkpoints, "trainer.keep_checkpoints")
    c.non_negative(t.eval_every, "trainer.eval_every")
    c.positive(t.pipeline_chunks, "trainer.pipeline_chunks")
    if t.pipeline_chunks > 1:
        mode = cfg.algorithm.mode
        pipelined = registry_choices()["pipelined_mode"]
        c.require(
            mode in pipelined,
            "trainer.pipeline_chunks",
            f"{t.pipeline_chunks}, but algorithm.mode={mode} has no pipelined maker "
            f"(only {', '.join(pipelined)}): set it to 1",
        )
    check_resume(t.resume, c)


def _cluster(cfg: CPEConfig, c: Checker) -> None:
    cl = cfg.cluster
    c.choice(cl.device, "cluster.device", DEVICES)
    c.positive(cl.num_nodes, "cluster.num_nodes")
    c.positive(cl.devices_per_node, "cluster.devices_per_node")
    c.positive(cl.cpus_per_gpu, "cluster.cpus_per_gpu")
    c.require(
        not is_ray_client(cl.address),
        "cluster.address",
        f"{cl.address} is a Ray Client address: the driver must run on a node of the "
        "cluster (ray job submit, or cluster.address=auto there)",
    )
    if not runs_grm_model(cfg.grm.backend) and cl.pools.grm.engines:
        c.require(
            False,
            "cluster.pools.grm.engines",
            f"is {cl.pools.grm.engines} but grm.backend={cfg.grm.backend!r} needs no "
            "GRM engines: set it to 0",
        )
    c.choice(cl.weight_sync, "cluster.weight_sync", registry_choices()["weight_sync"])
    c.positive(cl.sync_timeout_s, "cluster.sync_timeout_s")
    c.non_negative(cl.engine_restarts, "cluster.engine_restarts")
    if cl.weight_sync == "adapter":
        c.require(
            0 < cfg.learner.lora.rank <= 512,
            "cluster.weight_sync",
            "adapter moves LoRA adapters only: set learner.lora.rank to 1..512 (vLLM's "
            f"largest), it is {cfg.learner.lora.rank}; or use object_store",
        )
    if cl.weight_sync == "nccl":
        c.require(
            cl.device == "gpu",
            "cluster.weight_sync",
            f"nccl needs cluster.device=gpu (cluster.device={cl.device!r}): use object_store",
        )
    wanted = pool_devices(cfg)
    have = cl.num_nodes * cl.devices_per_node
    c.require(
        wanted <= have,
        "cluster.pools",
        f"the pools ask for {wanted} {cl.device.upper()} devices but the cluster declares "
        f"{have} (cluster.num_nodes={cl.num_nodes} x cluster.devices_per_node="
        f"{cl.devices_per_node}); shrink the pools or grow the cluster",
    )


def _pools(cfg: CPEConfig, c: Checker) -> None:
    """Every pool's sizes: counts >= 0, and > 0 where this config needs the pool."""
    needed = _needed_pools(cfg)
    for name in (*ENGINE_POOLS, *RANK_POOLS):
        spec = getattr(cfg.cluster.pools, name)
        count, per = ("engines", "devices_per_engine")
        if name in RANK_POOLS:
            count, per = ("ranks", "devices_per_rank")
        key = f"cluster.pools.{name}.{count}"
        value = getattr(spec, count)
        if key in needed:
            why = f" ({needed[key]})" if needed[key] else ""
            c.require(value > 0, key, f"{value} must be > 0{why}")
        elif name == "value" and value:
            adv = cfg.algorithm.advantage
            c.require(
                False,
                key,
                f"{value}, but algorithm.advantage={adv} reads no learned values, so no value "
                "model runs: set it to 0",
            )
        else:
            c.non_negative(value, key)
        if name in ENGINE_POOLS:
            # One engine's tensor-parallel workers are processes of one node (vLLM's
            # multiprocessing executor inside the engine's bundle, cpe.rollout.vllm_adapter).
            c.require(
                spec.devices_per_engine <= cfg.cluster.devices_per_node,
                f"cluster.pools.{name}.devices_per_engine",
                f"{spec.devices_per_engine} is more than cluster.devices_per_node="
                f"{cfg.cluster.devices_per_node}: an engine's tensor-parallel group must fit "
                "one node",
            )
        c.positive(getattr(spec, per), f"cluster.pools.{name}.{per}")


def _needed_pools(cfg: CPEConfig) -> dict[str, str]:
    """Pool size key -> why this config needs it (appended to the message)."""
    needed = {"cluster.pools.rollout.engines": "", "cluster.pools.policy.ranks": ""}
    if "value" in model_roles(cfg):
        adv = cfg.algorithm.advantage
        needed["cluster.pools.value.ranks"] = f"algorithm.advantage={adv} reads learned values"
    if runs_grm_model(cfg.grm.backend):
        needed["cluster.pools.grm.engines"] = f"grm.backend={cfg.grm.backend} runs the GRM on them"
    if cfg.algorithm.kl.coef > 0:
        needed["cluster.pools.reference.ranks"] = "algorithm.kl.coef > 0 needs a reference rank"
    return needed


def pool_devices(cfg: CPEConfig) -> int:
    return sum(plan.devices for plan in plan_pools(cfg.cluster))


def _logging(cfg: CPEConfig, c: Checker) -> None:
    c.choice(cfg.logging.wandb_mode, "logging.wandb_mode", WANDB_MODES)
    c.require(cfg.logging.sample_rows >= 0, "logging.sample_rows", "must be >= 0")


def _prompts(cfg: CPEConfig, c: Checker) -> None:
    """The prompt set and every override file exist (resolved as cpe.prompts does)."""
    from cpe.prompts import PromptSet

    missing = False
    for role in fields(cfg.prompts.overrides):
        path = getattr(cfg.prompts.overrides, role.name)
        if path is not None and not Path(path).expanduser().is_file():
            c.require(False, f"prompts.overrides.{role.name}", f"{path!r}: no such file")
            missing = True
    if missing:
        return
    try:
        PromptSet.from_config(cfg.prompts)
    except FileNotFoundError as exc:
        c.exception("prompts.set", exc)


def _keys(cfg: CPEConfig, c: Checker) -> None:
    """A key in the config would reach config.yaml and wandb: refused. A key bound for
    plain http off this machine is allowed (a trusted network may need it), but said."""
    c.problems.extend(key_problems(cfg))
    for line in plaintext_warnings(cfg):
        log.warning(line)


def _finite_numbers(node, c: Checker, prefix: str = "") -> None:
    """nan and inf parse as floats (``rollout.temperature=inf``) and slip past range
    checks written as ``x > 0``; no setting means either. Nor does an integer beyond
    64 bits (``rollout.n=10**23`` would overflow in torch and vLLM, far from the key)."""
    for f in fields(node):
        value, key = getattr(node, f.name), f"{prefix}{f.name}"
        if is_dataclass(value):
            _finite_numbers(value, c, f"{key}.")
        values = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            c.require(False, key, f"{value} must be a finite number")
        if any(isinstance(v, int) and not -(2**63) <= v < 2**63 for v in values):
            c.require(False, key, f"{value} does not fit a 64-bit integer")


# In the order their findings are listed.
PARTS = (
    _models,
    _data,
    _rollout,
    _grm,
    _algorithm,
    _learner,
    _trainer,
    _cluster,
    _pools,
    _logging,
    _prompts,
    _keys,
    _finite_numbers,
)
