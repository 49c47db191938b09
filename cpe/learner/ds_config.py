"""DeepSpeed configuration and learning-rate schedule from the typed learner config.

Pure functions: no DeepSpeed import, so they are unit-testable anywhere.
"""

from __future__ import annotations

import warnings
from typing import Any

from omegaconf import OmegaConf

from cpe.config import LearnerConfig

ROLES = ("actor", "critic")
DEVICES = ("cpu", "gpu")
DTYPES = ("float32", "bfloat16")
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def learning_rate(cfg: LearnerConfig, role: str) -> float:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    return cfg.actor_lr if role == "actor" else cfg.critic_lr


def uses_bf16(device: str, dtype: str) -> bool:
    """bf16 mixed precision only on GPU; CPU learners keep fp32 weights whatever ``dtype``."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return device == "gpu" and dtype == "bfloat16"


def build_ds_config(
    cfg: LearnerConfig,
    role: str,
    device: str = "cpu",
    dtype: str = "float32",
    world_size: int = 1,
    grad_accum_steps: int = 1,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``config`` dict for ``deepspeed.initialize``.

    ``grad_accum_steps`` is only the nominal value DeepSpeed checks batch sizes against:
    the workers mark the accumulation boundary themselves, because the number of
    micro-batches per optimizer step varies with the number of edits. The loss is
    scaled by the workers too (``backward(scale_wrt_gas=False)``).
    ``overrides`` are deep-merged last (e.g. ZeRO-3 persistence thresholds).
    """
    config: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": cfg.micro_batch_size,
        "gradient_accumulation_steps": grad_accum_steps,
        "train_batch_size": cfg.micro_batch_size * grad_accum_steps * world_size,
        "gradient_clipping": cfg.grad_clip,
        "zero_optimization": {
            "stage": cfg.zero_stage,
            "reduce_bucket_size": cfg.zero_bucket_elements,
            "allgather_bucket_size": cfg.zero_bucket_elements,
        },
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": learning_rate(cfg, role),
                "weight_decay": cfg.weight_decay,
                "betas": list(ADAM_BETAS),
                "eps": ADAM_EPS,
                "torch_adam": cfg.torch_adam,
            },
        },
        "bf16": {"enabled": uses_bf16(device, dtype)},
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }
    if not overrides:
        return config
    return OmegaConf.to_container(OmegaConf.merge(config, overrides))


def lr_scheduler_factory(cfg: LearnerConfig, total_steps: int | None = None):
    """A callable ``optimizer -> LambdaLR`` for ``deepspeed.initialize(lr_scheduler=...)``;
    DeepSpeed steps it once per optimizer step and saves it in its checkpoints.

    Linear warmup over ``warmup_steps`` (step 0 already gets 1/warmup), then constant or a
    cosine decay to 0 at ``total_steps`` (held at 0 after). transformers' schedules give
    their step 0 a factor of 0, so the scheduler is stepped once when built: optimizer
    step ``s`` runs at their factor for ``s + 1``. For the cosine, that is their
    warmup-stable-decay with a one-step stable phase (plain "cosine" would swing back up
    after ``total_steps``).
    """
    warmup = max(0, cfg.warmup_steps)
    if cfg.lr_schedule == "constant":
        name, kwargs = "constant_with_warmup", None
    elif cfg.lr_schedule == "cosine":
        if not total_steps:
            raise ValueError("lr_schedule=cosine needs the total number of optimizer steps")
        decay = max(1, total_steps - warmup)
        name, kwargs = "warmup_stable_decay", {"num_stable_steps": 1, "num_decay_steps": decay}
    else:
        raise ValueError(f"unknown lr_schedule {cfg.lr_schedule!r}")

    def build(optimizer):
        from transformers import get_scheduler

        scheduler = get_scheduler(
            name, optimizer, num_warmup_steps=warmup, scheduler_specific_kwargs=kwargs
        )
        with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()"
            warnings.simplefilter("ignore", UserWarning)
            scheduler.step()
        return scheduler

    return build
