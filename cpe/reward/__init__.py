"""Generative reward model (GRM) clients: critique and score answers, with retries.

``cpe.reward.openai_backend`` is imported only where used: importing ``openai`` makes
wandb print an advertisement into every run.

``build_grm(cfg.grm, ...)`` returns a :class:`GRMScorer` over the configured backend
(``vllm`` engines, an ``openai``-compatible endpoint, a ``python`` function, or a ``bt``
Bradley-Terry reward model's scorer actors, cpe.reward.bt_backend).
"""

from cpe.reward.base import (
    CRITIQUE_TEMPERATURE,
    SCORE_TEMPERATURE,
    GRMBackend,
    GRMError,
    GRMResult,
    GRMScorer,
    Item,
    Reply,
)
from cpe.reward.factory import GRM_BACKENDS, BuildContext, build_backend, build_grm
from cpe.reward.format import (
    build_grm_regex,
    critique_char_budget,
    format_grm_output,
    grm_regex_for,
)
from cpe.reward.python_backend import PythonBackend, load_function
from cpe.reward.vllm_backend import PromptTooLong, VLLMBackend

__all__ = [
    "CRITIQUE_TEMPERATURE",
    "GRM_BACKENDS",
    "SCORE_TEMPERATURE",
    "BuildContext",
    "GRMBackend",
    "GRMError",
    "GRMResult",
    "GRMScorer",
    "Item",
    "PromptTooLong",
    "PythonBackend",
    "Reply",
    "VLLMBackend",
    "build_backend",
    "build_grm",
    "build_grm_regex",
    "critique_char_budget",
    "format_grm_output",
    "grm_regex_for",
    "load_function",
]
