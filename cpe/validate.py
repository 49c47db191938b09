"""One start-up check of a composed config: impossible combinations fail here, with
the key to change, before Ray, vLLM or DeepSpeed start."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import fields, is_dataclass
from pathlib import Path

from cpe.cluster.placement import ENGINE_POOLS, RANK_POOLS, plan_pools
from cpe.config import MISSING_PATH, CPEConfig
from cpe.keys import key_problems, plaintext_warnings
from cpe.models.paths import model_roles
from cpe.reward.pools import runs_grm_model

DTYPES = ("float32", "bfloat16")
DEVICES = ("cpu", "gpu")
LR_SCHEDULES = ("constant", "cosine")
WANDB_MODES = ("offline", "online", "disabled")
ZERO_STAGES = (0, 1, 2, 3)
ATTENTION = ("sdpa", "eager", "flash_attention_2")  # transformers attn_implementation

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A config that cannot run; ``problems`` holds one (key, message) per finding."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("\n".join(f"{key}: {msg}" for key, msg in problems))


def _registry_choices() -> dict[str, tuple[str, ...]]:
    """Valid names come from the registries that dispatch on them, never a second list."""
    from cpe import algo
    from cpe.data.sources import FORMATS
    from cpe.eval.judges import JUDGE_BACKENDS
    from cpe.eval.runner import EVAL_TASKS
    from cpe.eval.sets import EVAL_SETS
    from cpe.label.pairs import PREFERENCES
    from cpe.reward.base import MODES as GRM_MODES
    from cpe.reward.factory import GRM_BACKENDS
    from cpe.trainer.makers import MAKERS
    from cpe.trainer.pipeline import PIPELINED_MAKERS
    from cpe.weight_sync.backends import WEIGHT_SYNC_BACKENDS

    return {
        "selection": tuple(algo.SELECTION_STRATEGIES),
        "advantage": tuple(algo.ADVANTAGE_ESTIMATORS),
        "policy_loss": tuple(algo.POLICY_LOSSES),
        "kl": tuple(algo.KL_ESTIMATORS),
        "mode": tuple(MAKERS),
        "pipelined_mode": tuple(PIPELINED_MAKERS),
        "grm_backend": tuple(GRM_BACKENDS),
        "grm_mode": GRM_MODES,
        "weight_sync": tuple(WEIGHT_SYNC_BACKENDS),
        "data_format": FORMATS,
        "lc_method": tuple(algo.LC_METHODS),
        "judge_backend": tuple(JUDGE_BACKENDS),
        "eval_set": tuple(EVAL_SETS),
        "eval_task": tuple(EVAL_TASKS),
        "label_preference": tuple(PREFERENCES),
    }


class _Checker:
    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def require(self, ok: bool, key: str, msg: str) -> None:
        if not ok:
            self.problems.append((key, msg))

    def choice(self, value, key: str, choices: Iterable) -> None:
        choices = tuple(choices)
        self.require(value in choices, key, f"{value!r} is not one of {list(choices)}")

    def in_range(self, value: float, key: str, lo: float, hi: float) -> None:
        self.require(lo <= value <= hi, key, f"{value} must be in [{lo}, {hi}]")

    def positive(self, value, key: str) -> None:
        self.require(value is not None and value > 0, key, f"{value} must be > 0")

    def non_negative(self, value, key: str) -> None:
        self.require(value >= 0, key, f"{value} must be >= 0")

    def exception(self, key: str, exc: Exception) -> None:
        """A finding from code that raises: one line, without a leading repeat of the key."""
        text = " ".join(str(exc).split())
        if text.startswith(key):
            text = text[len(key) :].lstrip("=: ")
        self.problems.append((key, text))


def validate(cfg: CPEConfig) -> None:
    """Raise :class:`ConfigError` listing every problem found in ``cfg``."""
    check = _Checker()
    parts = (_models, _data, _rollout, _grm, _algorithm, _learner, _trainer, _cluster, _pools)
    for part in (*parts, _logging, _prompts, _eval, _label, _sft, _compare, _keys):
        part(cfg, check)
    _finite_numbers(cfg, check)
    if check.problems:
        raise ConfigError(check.problems)


def _finite_numbers(node, c: _Checker, prefix: str = "") -> None:
    """nan and inf parse as floats (``rollout.temperature=inf``) and slip past range
    checks written as ``x > 0``; no setting means either."""
    for f in fields(node):
        value, key = getattr(node, f.name), f"{prefix}{f.name}"
        if is_dataclass(value):
            _finite_numbers(value, c, f"{key}.")
        values = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            c.require(False, key, f"{value} must be a finite number")


def _keys(cfg: CPEConfig, c: _Checker) -> None:
    """A key in the config would reach config.yaml and wandb: refused. A key bound for
    plain http off this machine is allowed (a trusted network may need it), but said."""
    c.problems.extend(key_problems(cfg))
    for line in plaintext_warnings(cfg):
        log.warning(line)


def _models(cfg: CPEConfig, c: _Checker) -> None:
    for role, spec in model_roles(cfg).items():
        c.require(spec.path not in ("", MISSING_PATH), f"model.{role}.path", "is not set")
        c.choice(spec.dtype, f"model.{role}.dtype", DTYPES)
    if cfg.algorithm.kl.coef > 0:
        c.require(
            cfg.model.reference.path is not None,
            "model.reference.path",
            "algorithm.kl.coef > 0 needs a reference model: set model.reference.path",
        )


def _data(cfg: CPEConfig, c: _Checker) -> None:
    d = cfg.data
    c.require(d.train_path not in ("", MISSING_PATH), "data.train_path", "is not set")
    if d.format is not None:
        c.choice(d.format, "data.format", _registry_choices()["data_format"])
    if d.max_train_records is not None:
        c.positive(d.max_train_records, "data.max_train_records")


def _rollout(cfg: CPEConfig, c: _Checker) -> None:
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


def _grm(cfg: CPEConfig, c: _Checker) -> None:
    g = cfg.grm
    choices = _registry_choices()
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


def _bt_reward_model(cfg: CPEConfig, c: _Checker) -> None:
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


def _python_function(spec: str | None, c: _Checker) -> None:
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


def _algorithm(cfg: CPEConfig, c: _Checker) -> None:
    a = cfg.algorithm
    choices = _registry_choices()
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


def _learner(cfg: CPEConfig, c: _Checker) -> None:
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


def _lora(lr, c: _Checker) -> None:
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


def _trainer(cfg: CPEConfig, c: _Checker) -> None:
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
        pipelined = _registry_choices()["pipelined_mode"]
        c.require(
            mode in pipelined,
            "trainer.pipeline_chunks",
            f"{t.pipeline_chunks}, but algorithm.mode={mode} has no pipelined maker "
            f"(only {', '.join(pipelined)}): set it to 1",
        )
    _resume(t.resume, c)


def _resume(resume: str, c: _Checker, key: str = "trainer.resume") -> None:
    from cpe.trainer.checkpoint import MARKER

    if resume in ("auto", "never"):
        return
    c.require(
        (Path(resume) / MARKER).is_file(),
        key,
        f"{resume!r} is not auto, never or a complete checkpoint folder (no {MARKER} file in it)",
    )


def _cluster(cfg: CPEConfig, c: _Checker) -> None:
    cl = cfg.cluster
    c.choice(cl.device, "cluster.device", DEVICES)
    c.positive(cl.num_nodes, "cluster.num_nodes")
    c.positive(cl.devices_per_node, "cluster.devices_per_node")
    c.positive(cl.cpus_per_gpu, "cluster.cpus_per_gpu")
    if not runs_grm_model(cfg.grm.backend) and cl.pools.grm.engines:
        c.require(
            False,
            "cluster.pools.grm.engines",
            f"is {cl.pools.grm.engines} but grm.backend={cfg.grm.backend!r} needs no "
            "GRM engines: set it to 0",
        )
    c.choice(cl.weight_sync, "cluster.weight_sync", _registry_choices()["weight_sync"])
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


def _pools(cfg: CPEConfig, c: _Checker) -> None:
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


def _logging(cfg: CPEConfig, c: _Checker) -> None:
    c.choice(cfg.logging.wandb_mode, "logging.wandb_mode", WANDB_MODES)
    c.require(cfg.logging.sample_rows >= 0, "logging.sample_rows", "must be >= 0")


def _prompts(cfg: CPEConfig, c: _Checker) -> None:
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


def _eval(cfg: CPEConfig, c: _Checker) -> None:
    e, choices = cfg.eval, _registry_choices()
    c.choice(e.task, "eval.task", choices["eval_task"])
    c.choice(e.lc_method, "eval.lc_method", choices["lc_method"])
    c.choice(e.judge.backend, "eval.judge.backend", choices["judge_backend"])
    if e.set is not None:
        c.choice(e.set, "eval.set", choices["eval_set"])
    if e.max_records is not None:
        c.positive(e.max_records, "eval.max_records")
    c.positive(e.judge.max_prompt_tokens, "eval.judge.max_prompt_tokens")
    c.choice(e.judge.dtype, "eval.judge.dtype", DTYPES)
    c.non_negative(e.judge.retries, "eval.judge.retries")
    if e.judge.backend == "openai":
        c.positive(e.judge.openai.concurrency, "eval.judge.openai.concurrency")
        c.non_negative(e.judge.openai.max_retries, "eval.judge.openai.max_retries")
    if cfg.trainer.eval_every and e.judge.backend == "vllm":
        # During training the judge runs on the GRM pool's engines, which hold the GRM.
        c.require(
            cfg.grm.backend == "vllm" and e.judge.model == cfg.model.grm.path,
            "eval.judge.model",
            f"{e.judge.model!r}: with trainer.eval_every the vLLM judge is the GRM engines' "
            f"model ({cfg.model.grm.path!r}, grm.backend=vllm); or use eval.judge.backend=openai",
        )
        from cpe.eval.judges import JUDGE_LEN_SLACK

        room = cfg.grm.max_prompt_tokens + cfg.grm.max_new_tokens - JUDGE_LEN_SLACK
        c.require(
            e.judge.max_prompt_tokens <= room,
            "eval.judge.max_prompt_tokens",
            f"{e.judge.max_prompt_tokens} exceeds what the GRM engines hold ({room}: "
            "grm.max_prompt_tokens + grm.max_new_tokens - 8)",
        )
    if e.task != "pairwise":
        # Keys only the pairwise task reads: a set one would be silently ignored.
        for key, value, default in (
            ("probe", e.probe, False),
            ("grm_scores", e.grm_scores, False),
            ("reference", e.reference, "initial"),
        ):
            c.require(
                value == default, f"eval.{key}", f"applies to eval.task=pairwise only, not {e.task}"
            )
    if cfg.trainer.eval_every and e.judge.backend == "vllm":
        c.require(
            e.judge.dtype == cfg.model.grm.dtype,
            "eval.judge.dtype",
            f"{e.judge.dtype!r}: with trainer.eval_every the judge runs on the GRM engines "
            f"({cfg.model.grm.dtype!r})",
        )
    if cfg.trainer.eval_every:
        c.require(e.task == "pairwise", "eval.task", f"{e.task!r}: during training only pairwise")
        c.require(
            e.reference == "initial" or e.reference == "dataset" or Path(e.reference).is_file(),
            "eval.reference",
            f"{e.reference!r}: during training the reference is initial, dataset or an outputs file",
        )


def _sft(cfg: CPEConfig, c: _Checker) -> None:
    """The sft node's values (cpe.sft itself requires sft.model and sft.train_path)."""
    from cpe.sft.tasks import SFT_TASKS

    s = cfg.sft
    c.choice(s.task, "sft.task", SFT_TASKS)
    c.choice(s.dtype, "sft.dtype", DTYPES)
    for key in ("epochs", "lr", "batch_examples", "save_every", "keep_checkpoints"):
        c.positive(getattr(s, key), f"sft.{key}")
    c.require(s.max_len >= 2, "sft.max_len", f"{s.max_len} leaves no room for a reply")
    c.non_negative(s.eval_every, "sft.eval_every")
    c.require(0 <= s.eval_share < 1, "sft.eval_share", f"{s.eval_share} must be in [0, 1)")
    _resume(s.resume, c, key="sft.resume")


def _compare(cfg: CPEConfig, c: _Checker) -> None:
    from cpe.compare.stages import COMPARED_RUNS

    runs = cfg.compare.runs
    for run in runs:
        c.choice(run, "compare.runs", COMPARED_RUNS)
    c.require(bool(runs), "compare.runs", "names no run")
    c.require(len(set(runs)) == len(runs), "compare.runs", f"{list(runs)} repeats a run")
    c.positive(cfg.compare.sample_pairs, "compare.sample_pairs")


def _label(cfg: CPEConfig, c: _Checker) -> None:
    lab = cfg.label
    c.choice(lab.preference, "label.preference", _registry_choices()["label_preference"])
    c.require(0 <= lab.eval_share < 1, "label.eval_share", f"{lab.eval_share} must be in [0, 1)")
    c.positive(lab.chunk, "label.chunk")
    if lab.max_pairs is not None:
        c.positive(lab.max_pairs, "label.max_pairs")
    if lab.sample_answers:
        c.require(
            lab.preference == "teacher",
            "label.preference",
            f"{lab.preference!r}: sampled answers (label.sample_answers=true) have no dataset "
            "preference; set label.preference=teacher",
        )
    if lab.consistency_filter:
        c.require(
            lab.preference == "dataset",
            "label.consistency_filter",
            f"applies to label.preference=dataset only, not {lab.preference!r}",
        )
