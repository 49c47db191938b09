"""Build the configured GRM: a backend chosen by ``grm.backend`` wrapped in a GRMScorer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cpe.prompts import PromptSet
from cpe.reward.base import GRMBackend, GRMError, GRMScorer
from cpe.reward.format import grm_regex_for
from cpe.reward.python_backend import PythonBackend
from cpe.reward.vllm_backend import DEFAULT_MAX_PROMPT_TOKENS, VLLMBackend


@dataclass(frozen=True)
class BuildContext:
    """What a backend builder may need besides the ``grm`` config node."""

    engine_pool: Any = None  # the GRM pool's actors: vLLM engines, or BT scorers (a BTPool)
    tokenizer: Any = None
    prompts: PromptSet | None = None
    max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS


def _vllm(cfg: Any, ctx: BuildContext) -> GRMBackend:
    if ctx.engine_pool is None or ctx.tokenizer is None:
        missing = "engine_pool" if ctx.engine_pool is None else "tokenizer"
        raise GRMError(
            f"grm.backend='vllm' needs the GRM engine pool and the GRM tokenizer; got no {missing}"
        )
    return VLLMBackend(
        ctx.engine_pool,
        ctx.tokenizer,
        prompts=ctx.prompts,
        max_new_tokens=cfg.max_new_tokens,
        max_prompt_tokens=ctx.max_prompt_tokens,
        guided_decoding=cfg.guided_decoding,
    )


def _bt(cfg: Any, ctx: BuildContext) -> GRMBackend:
    from cpe.reward.bt_backend import BTBackend

    if ctx.engine_pool is None or ctx.tokenizer is None:
        missing = "scorer pool" if ctx.engine_pool is None else "tokenizer"
        raise GRMError(
            f"grm.backend='bt' needs the BT scorers of the GRM pool and the reward model's "
            f"tokenizer; got no {missing}"
        )
    return BTBackend(
        ctx.engine_pool, ctx.tokenizer, prompts=ctx.prompts, max_len=ctx.max_prompt_tokens
    )


def _openai(cfg: Any, ctx: BuildContext) -> GRMBackend:
    # Imported only when chosen: wandb announces every run that has `openai` loaded.
    from cpe.reward.openai_backend import OpenAIBackend

    regex = grm_regex_for(cfg.max_new_tokens) if cfg.guided_decoding else None
    return OpenAIBackend(
        cfg.openai,
        prompts=ctx.prompts,
        max_new_tokens=cfg.max_new_tokens,
        guided_regex=regex,
    )


def _python(cfg: Any, ctx: BuildContext) -> GRMBackend:
    if not cfg.python_function:
        raise GRMError("grm.backend='python' needs grm.python_function='package.module:function'")
    return PythonBackend(cfg.python_function)


GRM_BACKENDS: dict[str, Callable[[Any, BuildContext], GRMBackend]] = {
    "vllm": _vllm,
    "openai": _openai,
    "python": _python,
    "bt": _bt,
}


def build_backend(cfg: Any, ctx: BuildContext) -> GRMBackend:
    builder = GRM_BACKENDS.get(cfg.backend)
    if builder is None:
        raise GRMError(f"grm.backend={cfg.backend!r} is not one of {', '.join(GRM_BACKENDS)}")
    return builder(cfg, ctx)


def build_grm(
    cfg: Any,
    engine_pool: Any = None,
    tokenizer: Any = None,
    prompts: PromptSet | Any = None,
    max_prompt_tokens: int | None = None,
) -> GRMScorer:
    """A GRMScorer for the ``grm`` config node (:class:`cpe.config.GRMConfig`).

    ``prompts``: a PromptSet, a ``prompts`` config node or None (the default set).
    ``max_prompt_tokens`` (vllm, bt): the GRM prompt limit (bt: prompt + answer); the
    answer is truncated to fit it.
    """
    ctx = BuildContext(
        engine_pool=engine_pool,
        tokenizer=tokenizer,
        prompts=PromptSet.from_config(prompts),
        max_prompt_tokens=max_prompt_tokens or DEFAULT_MAX_PROMPT_TOKENS,
    )
    return GRMScorer(
        build_backend(cfg, ctx),
        mode=cfg.mode,
        weights=list(cfg.weights),
        critique_temperature=cfg.critique_temperature,
        score_temperature=cfg.score_temperature,
        retries=cfg.retries,
        backoff_s=cfg.backoff_s,
        clamp_scores=cfg.clamp_scores,
    )
