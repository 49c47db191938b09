"""The cheap start-up checks: data readable and valid, run folder usable, models
findable, every prompt within its token budget, the checkpoint to resume one cpe wrote.
No Ray: a bad input never costs a cluster start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cpe.cluster.memory_plan import check_layout_fits
from cpe.config import CPEConfig
from cpe.data.paths import load_path
from cpe.data.records import Record
from cpe.models.paths import check_model_path, model_roles, resolve_model_path
from cpe.trainer.checkpoint import CheckpointManager, resolve_resume
from cpe.trainer.run_folder import check_outlives_job, check_same_run
from cpe.validate import ConfigError

MAX_LISTED = 3  # offenders named in the error; the rest are counted


@dataclass(frozen=True)
class Preflight:
    """What the checks hand to the run: its records, and the checkpoint it continues
    from (manifest verified; None: a fresh start)."""

    train: list[Record]
    resume: Path | None


def load_split(
    path: str, personas_path: str | None, fmt: str | None, limit: int | None
) -> list[Record]:
    """The records of a data path (see :func:`cpe.data.paths.load_path`), at most ``limit``."""
    records = load_path(path, personas_path, fmt)
    return records[:limit] if limit else records


def total_steps(cfg: CPEConfig, num_records: int) -> int:
    if cfg.trainer.total_steps is not None:
        return cfg.trainer.total_steps
    return max(1, cfg.trainer.epochs * (num_records // cfg.trainer.rollout_batch_prompts))


def prepare(cfg: CPEConfig) -> Preflight:
    """The checks before Ray: data readable and valid, run folder usable, models and
    prompts fit, the checkpoint to resume verified (the only part that reads much)."""
    data = cfg.data
    train = load_split(data.train_path, data.personas_path, data.format, data.max_train_records)
    if len(train) < cfg.trainer.rollout_batch_prompts:
        raise ValueError(
            f"data.train_path has {len(train)} records, fewer than "
            f"trainer.rollout_batch_prompts={cfg.trainer.rollout_batch_prompts}"
        )
    run_dir = Path(cfg.logging.run_dir)
    if cfg.trainer.resume == "never" and (run_dir / "metrics.jsonl").exists():
        raise ValueError(
            f"logging.run_dir={str(run_dir)!r} already holds a run and trainer.resume=never would "
            "overwrite its metrics: pick a new logging.run_dir or use trainer.resume=auto"
        )
    check_outlives_job(cfg)
    check_same_run(cfg)
    for role, spec in model_roles(cfg).items():
        check_model_path(spec.path, f"model.{role}.path")
    check_layout_fits(cfg)
    check_attention(cfg)
    check_prompt_lengths(cfg, train)
    if cfg.trainer.eval_every:
        from cpe.eval.sets import load_eval_set

        check_prompt_lengths(cfg, load_eval_set(cfg.eval), cfg.eval.data_path)
    return Preflight(train, resume_checkpoint(cfg))


def resume_checkpoint(cfg: CPEConfig) -> Path | None:
    """``trainer.resume`` as a checkpoint folder whose manifest checks out, or None.
    Verified here, once: a checkpoint cpe refuses to load never costs a cluster start-up."""
    manager = CheckpointManager(cfg.logging.run_dir, keep=cfg.trainer.keep_checkpoints)
    return resolve_resume(cfg.trainer.resume, manager)


def check_prompt_lengths(cfg: CPEConfig, records: list[Record], source: str | None = None) -> None:
    """Every record's policy prompt fits ``rollout.max_prompt_tokens``.

    The rollout refuses a longer prompt mid-run; checking all records here turns a
    crash hours in into one line before Ray starts.
    """
    limit = cfg.rollout.max_prompt_tokens
    lengths = policy_prompt_lengths(cfg, records)
    over = [(r.id, n) for r, n in zip(records, lengths, strict=True) if n > limit]
    if not over:
        return
    listed = ", ".join(f"record {rid!r} ({n} tokens)" for rid, n in over[:MAX_LISTED])
    more = f" and {len(over) - MAX_LISTED} more" if len(over) > MAX_LISTED else ""
    message = (
        f"{len(over)} of {len(records)} policy prompts in {source or cfg.data.train_path} are longer "
        f"than {limit} tokens: {listed}{more}; raise it to at least {max(lengths)} or drop "
        "those records"
    )
    raise ConfigError([("rollout.max_prompt_tokens", message)])


def policy_prompt_lengths(cfg: CPEConfig, records: list[Record]) -> list[int]:
    """Token counts of the policy prompts exactly as the rollout renders them."""
    from transformers import AutoTokenizer

    from cpe.prompts import PromptSet, policy_messages
    from cpe.prompts.chat import to_token_ids

    path = resolve_model_path(cfg.model.policy.path, cfg.model.cache_dir, "model.policy.path")
    tokenizer = AutoTokenizer.from_pretrained(path)
    prompts = PromptSet.from_config(cfg.prompts)
    return [len(to_token_ids(tokenizer, policy_messages(record, prompts))) for record in records]


def check_attention(cfg: CPEConfig) -> None:
    """flash_attention_2 needs the flash-attn package (no extra installs it); the nodes
    run the driver's environment (the image), so its absence here is its absence there."""
    import importlib.util

    if cfg.learner.attn_implementation == "flash_attention_2" and not importlib.util.find_spec(
        "flash_attn"
    ):
        raise ValueError(
            "learner.attn_implementation=flash_attention_2 needs the flash-attn package, "
            "which is not installed: install it into the image or use sdpa"
        )
