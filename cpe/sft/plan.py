"""The cheap start-up checks of ``python -m cpe.sft``: the task's settings, the starting
model, the examples read and tokenized, the output folder. Seconds, no Ray."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cpe.config import CPEConfig
from cpe.models.paths import resolve_model_path
from cpe.prompts import PromptSet
from cpe.sft.loop import MODEL_FOLDER, SFTPlan
from cpe.sft.tasks import SFT_TASKS
from cpe.validate import ConfigError

SETTINGS_FILE = "sft_settings.json"
# What a continued folder must share with the run that made it.
SETTINGS_KEYS = (
    "task", "model", "train_path", "eval_path", "eval_share", "epochs", "batch_examples",
    "max_len", "seed",
)  # fmt: skip


def plan_sft(cfg: CPEConfig) -> SFTPlan:
    from transformers import AutoTokenizer

    s = cfg.sft
    missing = [(f"sft.{k}", "is not set") for k in ("model", "train_path") if not getattr(s, k)]
    if missing:
        raise ConfigError(missing)
    _refuse_ignored_keys(cfg)
    settings = _check_output_dir(cfg)
    task = SFT_TASKS[s.task]
    tokenizer = AutoTokenizer.from_pretrained(
        resolve_model_path(s.model, cfg.model.cache_dir, "sft.model")
    )
    data = task.load(cfg, tokenizer, PromptSet.from_config(cfg.prompts))
    if not data.train:
        raise ValueError(
            f"sft.train_path={s.train_path!r}: no {task.unit} to train on "
            f"({data.skipped} over sft.max_len={s.max_len})"
        )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    # Written once everything checked out: a typo fixed in the next command must not
    # find the folder claimed by the failed one.
    settings.write()
    return SFTPlan(cfg, task, data, pad)


def _refuse_ignored_keys(cfg: CPEConfig) -> None:
    """Settings this task would not read: refused rather than silently ignored."""
    s, problems = cfg.sft, []
    if s.task == "bt":
        if cfg.learner.lora.rank > 0:
            problems.append(
                ("learner.lora.rank", "sft.task=bt trains the reward model in full (no LoRA)")
            )
        if cfg.learner.micro_batch_tokens > 0:
            problems.append(
                (
                    "learner.micro_batch_tokens",
                    "sft.task=bt cuts micro-batches by whole pairs (learner.micro_batch_size)",
                )
            )
    if s.task == "grm" and s.personas_path is not None:
        problems.append(
            ("sft.personas_path", "sft.task=grm reads chats, which hold no persona ids")
        )
    if problems:
        raise ConfigError(problems)


@dataclass(frozen=True)
class _Settings:
    path: Path
    values: dict

    def write(self) -> None:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.values, indent=1))


def _check_output_dir(cfg: CPEConfig) -> _Settings:
    """A folder holds one training: a finished one is refused, a continued one must
    match the settings it was made with."""
    out = Path(cfg.sft.output_dir)
    if (out / MODEL_FOLDER).exists():
        raise ValueError(
            f"sft.output_dir={str(out)!r} already holds a finished model ({MODEL_FOLDER}/); "
            "choose a new folder"
        )
    settings = _Settings(out / SETTINGS_FILE, {k: getattr(cfg.sft, k) for k in SETTINGS_KEYS})
    if settings.path.exists():
        saved = json.loads(settings.path.read_text())
        changed = [k for k in SETTINGS_KEYS if saved.get(k) != settings.values[k]]
        if changed:
            named = ", ".join(
                f"sft.{k} ({saved.get(k)!r} -> {settings.values[k]!r})" for k in changed
            )
            raise ValueError(f"sft.output_dir={str(out)!r} was made with other settings: {named}")
    return settings
