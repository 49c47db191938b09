"""The memory planner: a config's pools and models -> per-GPU needs
(``cpe.cluster.memory``), checked at start-up and printed by ``python -m cpe.tools.plan``."""

from __future__ import annotations

import json
from pathlib import Path

from cpe.cluster.memory import (
    ARCHS,
    Need,
    Shape,
    engine_need,
    learner_need,
    lora_params,
    scorer_need,
)
from cpe.config import CPEConfig


class LayoutDoesNotFit(ValueError):
    """A pool needs more memory per GPU than a GPU offers it."""


def model_shape(path: str | None, arch: str | None) -> Shape | None:
    """The shape from the model folder's config.json when it is here, else the catalog's
    ``arch``; None when neither is known."""
    config = Path(path or "") / "config.json"
    if path and config.is_file():
        return Shape.from_hf_config(json.loads(config.read_text()))
    return ARCHS.get(arch) if arch else None


def training_lengths(cfg: CPEConfig) -> tuple[int, int]:
    """(sequence, response) tokens of the longest training row: a prompt plus the longer
    of an answer and an edit (edits train under the original prompt)."""
    r = cfg.rollout
    response = max(r.max_new_tokens, r.edit_max_new_tokens)
    return r.max_prompt_tokens + response, response


def micro_batch_rows(cfg: CPEConfig, seq_len: int) -> int:
    budget = cfg.learner.micro_batch_tokens
    return max(1, budget // seq_len) if budget else cfg.learner.micro_batch_size


def pool_needs(cfg: CPEConfig) -> list[tuple[Need, Shape | None]]:
    """Every placed pool's need per GPU (None where the model's shape is unknown)."""
    from cpe.models.paths import model_roles
    from cpe.trainer.system import grm_max_len, rollout_max_len

    m, cl, lr, r = cfg.model, cfg.cluster, cfg.learner, cfg.rollout
    roles = model_roles(cfg)
    policy = model_shape(m.policy.path, m.policy.arch)
    seq, response = training_lengths(cfg)
    b = micro_batch_rows(cfg, seq)
    out: list[tuple[Need, Shape | None]] = []
    engines = [("rollout", policy, rollout_max_len(cfg))]
    if "grm" in roles and cfg.grm.backend == "bt":
        out.extend(_bt_scorer_need(cfg))
    elif "grm" in roles:
        engines.append(("grm", model_shape(m.grm.path, m.grm.arch), grm_max_len(cfg)))
    for pool, shape, length in engines:
        spec = getattr(cl.pools, pool)
        if spec.engines and shape is not None:
            need = engine_need(
                pool, shape, spec.engines, spec.devices_per_engine, length,
                cl.gpu_memory_gib, r.gpu_memory_utilization,
            )  # fmt: skip
            out.append((need, shape))
    learners = [("policy", policy), ("value", model_shape(m.value.path, m.value.arch))]
    if "reference" in roles:
        learners.append(("reference", model_shape(m.reference.path, m.policy.arch)))
    for pool, shape in learners:
        ranks = getattr(cl.pools, pool).ranks
        if not ranks or shape is None or (pool == "value" and "value" not in roles):
            continue
        trainable = None
        if pool == "policy" and lr.lora.rank:
            trainable = lora_params(shape, lr.lora.rank, list(lr.lora.target_modules))
        need = learner_need(
            pool, shape, ranks, lr.zero_stage, b, seq, response,
            lr.gradient_checkpointing, cl.gpu_memory_gib, trainable, lr.logprob_chunk,
        )  # fmt: skip
        out.append((need, shape))
    return out


def _bt_scorer_need(cfg: CPEConfig) -> list[tuple[Need, Shape | None]]:
    """The GRM pool of grm.backend=bt: forward-only reward models, not vLLM engines."""
    from cpe.reward.pools import bt_micro_batch_rows

    m, spec = cfg.model.grm, cfg.cluster.pools.grm
    shape = model_shape(m.path, m.arch)
    if not spec.engines or shape is None:
        return []
    need = scorer_need(
        "grm", shape, spec.engines, bt_micro_batch_rows(cfg), cfg.grm.max_prompt_tokens,
        cfg.cluster.gpu_memory_gib, 2 if m.dtype == "bfloat16" else 4,
    )  # fmt: skip
    return [(need, shape)]


def check_layout_fits(cfg: CPEConfig) -> None:
    """Raise :class:`LayoutDoesNotFit` naming each pool that cannot fit (GPU only)."""
    if cfg.cluster.device != "gpu":
        return
    over = [need for need, _ in pool_needs(cfg) if need.shortfall_gib > 0]
    if over:
        raise LayoutDoesNotFit(
            "; ".join(
                f"cluster.pools.{n.pool}: about {n.total_gib:.1f} GiB per GPU needed "
                f"({describe(n)}) but a GPU offers {n.budget_gib:.1f} "
                f"(cluster.gpu_memory_gib={cfg.cluster.gpu_memory_gib:g}"
                + (
                    f" x rollout.gpu_memory_utilization={cfg.rollout.gpu_memory_utilization:g}"
                    if "kv_one_sequence" in n.parts  # a vLLM engine's share of the GPU
                    else ""
                )
                + f"), {n.shortfall_gib:.1f} GiB short"
                for n in over
            )
            + ": add ranks or engines, raise learner.zero_stage, turn on "
            "learner.gradient_checkpointing or shorten the sequences "
            "(python -m cpe.tools.plan prints the table)"
        )


def describe(need: Need) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in need.parts.items() if v >= 0.05)
