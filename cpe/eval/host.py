"""The engines an evaluation uses: Ray, the rollout and GRM placement groups, and one
engine pool (or BT scorer pool, grm.backend=bt) per placement pool, started on demand and
replaced when another model is asked for (only one policy's engines live at a time)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from cpe.config import CPEConfig
from cpe.eval.judges import JUDGE_BACKENDS, JUDGE_LEN_SLACK, PairwiseJudge
from cpe.prompts import PromptSet


@dataclass
class _Live:
    kind: str  # "vllm" engines or "bt" scorers
    model: str
    dtype: str
    max_len: int
    engines: Any
    tokenizer: Any

    def serves(self, want: _Live) -> bool:
        same = (self.kind, self.model, self.dtype) == (want.kind, want.model, want.dtype)
        return same and self.max_len >= want.max_len


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
        """The vLLM engine pool and tokenizer of ``model`` on placement pool ``pool``."""
        from cpe.rollout.launch import engine_pool

        def start() -> Any:
            return engine_pool(self._placement(), pool, self.cfg, model, dtype, max_len)

        return self._host(_Live("vllm", model, dtype, max_len, None, None), pool, start)

    def _host(self, want: _Live, pool: str, start: Callable[[], Any]) -> tuple[Any, Any]:
        """The live actors on ``pool`` when they are ``want`` (holding at least its
        length), else ``start()``'s, after the old ones free the bundles."""
        live = self.live.get(pool)
        if live and live.serves(want):
            return live.engines, live.tokenizer
        if live:
            _release(self.live.pop(pool).engines)
        from cpe.models.paths import resolve_model_path

        # The actors resolve the model on their own nodes; the tokenizer is the driver's.
        path = resolve_model_path(want.model, self.cfg.model.cache_dir, f"{pool} model")
        self.live[pool] = replace(want, engines=start(), tokenizer=_tokenizer(path))
        return self.live[pool].engines, self.live[pool].tokenizer

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
        elif g.backend == "bt":
            engines, tokenizer = self._bt_scorers()
        return build_grm(g, engines, tokenizer, prompts, g.max_prompt_tokens)

    def _bt_scorers(self) -> tuple[Any, Any]:
        from cpe.reward.bt_backend import bt_pool
        from cpe.reward.pools import bt_micro_batch_rows

        m = self.cfg.model.grm

        def start() -> Any:
            return bt_pool(self._placement(), self.cfg, m.path, bt_micro_batch_rows(self.cfg))

        return self._host(_Live("bt", m.path, m.dtype, 0, None, None), "grm", start)

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
