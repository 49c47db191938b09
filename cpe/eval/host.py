"""The engines an evaluation uses: Ray, the rollout and GRM placement groups, and one
engine pool per placement pool, started on demand and replaced when another model is
asked for (only one policy's engines live at a time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cpe.config import CPEConfig
from cpe.eval.judges import JUDGE_BACKENDS, JUDGE_LEN_SLACK, PairwiseJudge
from cpe.prompts import PromptSet


@dataclass
class _Live:
    model: str
    dtype: str
    max_len: int
    engines: Any
    tokenizer: Any


class EngineHost:
    """Used as a context manager: everything it started is stopped on exit."""

    def __init__(self, cfg: CPEConfig):
        self.cfg = cfg
        self.placement = None
        self.started_ray = False
        self.live: dict[str, _Live] = {}

    def __enter__(self) -> EngineHost:
        return self

    def __exit__(self, *exc: object) -> None:
        import ray

        for live in self.live.values():
            _release(live.engines)
        if self.placement is not None:
            self.placement.remove()
        if self.started_ray:
            ray.shutdown()

    def engines(self, pool: str, model: str, dtype: str, max_len: int) -> tuple[Any, Any]:
        """The engine pool and tokenizer of ``model`` on placement pool ``pool``."""
        live = self.live.get(pool)
        if live and (live.model, live.dtype) == (model, dtype) and live.max_len >= max_len:
            return live.engines, live.tokenizer
        if live:
            _release(self.live.pop(pool).engines)  # frees the bundles for the next model
        from cpe.models.paths import resolve_model_path
        from cpe.rollout.launch import engine_pool

        # The engines resolve `model` on their own nodes; the tokenizer is the driver's.
        path = resolve_model_path(model, self.cfg.model.cache_dir, f"{pool} model")
        engines = engine_pool(self._placement(), pool, self.cfg, model, dtype, max_len)
        self.live[pool] = _Live(model, dtype, max_len, engines, _tokenizer(path))
        return engines, self.live[pool].tokenizer

    def policy(self, model: str) -> tuple[Any, Any]:
        r = self.cfg.rollout
        return self.engines(
            "rollout", model, self.cfg.model.policy.dtype, r.max_prompt_tokens + r.max_new_tokens
        )

    def judge(self, prompts: PromptSet) -> PairwiseJudge:
        j = self.cfg.eval.judge
        engines = tokenizer = None
        if j.backend == "vllm":
            engines, tokenizer = self.engines("grm", j.model, j.dtype, self._grm_pool_len())
        return JUDGE_BACKENDS[j.backend](j, prompts, engines, tokenizer)

    def grm(self, prompts: PromptSet):
        from cpe.reward.factory import build_grm

        g, m = self.cfg.grm, self.cfg.model.grm
        engines = tokenizer = None
        if g.backend == "vllm":
            engines, tokenizer = self.engines("grm", m.path, m.dtype, self._grm_pool_len())
        return build_grm(g, engines, tokenizer, prompts, g.max_prompt_tokens)

    def _grm_pool_len(self) -> int:
        """One length for every vLLM user of the GRM pool (the judge, the GRM), so a model
        they share starts once and holds what either needs."""
        cfg = self.cfg
        lengths = []
        if cfg.eval.judge.backend == "vllm":
            lengths.append(cfg.eval.judge.max_prompt_tokens + JUDGE_LEN_SLACK)
        if cfg.grm.backend == "vllm":
            lengths.append(cfg.grm.max_prompt_tokens + cfg.grm.max_new_tokens)
        return max(lengths)

    def _placement(self):
        if self.placement is None:
            from cpe.cluster.placement import Placement
            from cpe.cluster.session import init_ray

            self.started_ray = init_ray(self.cfg)
            self.placement = Placement(self.cfg.cluster, only=("rollout", "grm")).create()
        return self.placement


def _tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _release(pool: Any) -> None:
    import ray

    try:
        pool.shutdown()
    finally:
        for actor in pool.actors:
            ray.kill(actor)
