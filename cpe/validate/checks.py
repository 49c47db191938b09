"""What every part of the start-up check shares: the error it raises, the collector of
findings, the value lists and the registry-derived choices."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

DTYPES = ("float32", "bfloat16")
DEVICES = ("cpu", "gpu")
LR_SCHEDULES = ("constant", "cosine")
WANDB_MODES = ("offline", "online", "disabled")
ZERO_STAGES = (0, 1, 2, 3)
ATTENTION = ("sdpa", "eager", "flash_attention_2")  # transformers attn_implementation


class ConfigError(ValueError):
    """A config that cannot run; ``problems`` holds one (key, message) per finding."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("\n".join(f"{key}: {msg}" for key, msg in problems))


def registry_choices() -> dict[str, tuple[str, ...]]:
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


class Checker:
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


def check_resume(resume: str, c: Checker, key: str = "trainer.resume") -> None:
    """auto, never, or a folder holding a complete checkpoint."""
    from cpe.trainer.checkpoint import MARKER

    if resume in ("auto", "never"):
        return
    c.require(
        (Path(resume) / MARKER).is_file(),
        key,
        f"{resume!r} is not auto, never or a complete checkpoint folder (no {MARKER} file in it)",
    )
