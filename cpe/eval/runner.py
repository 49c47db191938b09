"""``python -m cpe.eval``: answers from every policy (one engine pool at a time on the
rollout pool), then judgments on the judge (GRM pool engines or an endpoint), then the
results files. Only what the eval folder lacks is computed; nothing starts when
everything is cached."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cpe.config import CPEConfig
from cpe.eval.answers import PolicyAnswerer, eval_sampling
from cpe.eval.judges import JUDGE_BACKENDS, PairwiseJudge
from cpe.eval.plan import EvalPlan, judge_description, plan_eval
from cpe.eval.policies import PolicySpec
from cpe.eval.results import markdown_table
from cpe.prompts import PromptSet
from cpe.validate import JUDGE_LEN_SLACK


class EngineHost:
    """Ray, the rollout and GRM placement groups, and engine pools started on demand."""

    def __init__(self, cfg: CPEConfig):
        self.cfg = cfg
        self.placement = None
        self.started_ray = False
        self.pools: list[Any] = []

    def __enter__(self) -> EngineHost:
        return self

    def __exit__(self, *exc: object) -> None:
        import ray

        for pool in self.pools:
            _release(pool)
        if self.placement is not None:
            self.placement.remove()
        if self.started_ray:
            ray.shutdown()

    def _placement(self):
        if self.placement is None:
            from cpe.cluster.placement import Placement
            from cpe.cluster.session import init_ray

            self.started_ray = init_ray(self.cfg)
            pools = ("rollout", "grm") if self.cfg.eval.judge.backend == "vllm" else ("rollout",)
            self.placement = Placement(self.cfg.cluster, only=pools).create()
        return self.placement

    def engines(self, pool: str, model: str, dtype: str, max_len: int):
        from cpe.models.paths import resolve_model_path
        from cpe.trainer.system import engine_pool

        path = resolve_model_path(model, self.cfg.model.cache_dir, f"{pool} model")
        engines = engine_pool(self._placement(), pool, self.cfg, path, dtype, max_len)
        self.pools.append(engines)
        return engines, _tokenizer(path)

    @contextmanager
    def policy(self, spec: PolicySpec):
        r = self.cfg.rollout
        max_len = r.max_prompt_tokens + r.max_new_tokens
        engines, tokenizer = self.engines(
            "rollout", spec.model_path, self.cfg.model.policy.dtype, max_len
        )
        try:
            yield engines, tokenizer
        finally:
            self.pools.remove(engines)
            _release(engines)  # frees the bundle for the next policy's engines

    def judge(self, prompts: PromptSet) -> PairwiseJudge:
        j = self.cfg.eval.judge
        engines = tokenizer = None
        if j.backend == "vllm":
            max_len = j.max_prompt_tokens + JUDGE_LEN_SLACK
            engines, tokenizer = self.engines("grm", j.model, j.dtype, max_len)
        return JUDGE_BACKENDS[j.backend](j, prompts, engines, tokenizer)


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


def run_eval(cfg: CPEConfig, plan: EvalPlan | None = None) -> Path:
    """Runs (or completes) the evaluation; returns the results.json path."""
    started = time.time()
    plan = plan or plan_eval(cfg, progress=cfg.logging.progress)
    ev = plan.evaluation
    prompts = PromptSet.from_config(cfg.prompts)
    r = cfg.rollout
    sampling = eval_sampling(r.eval_temperature, r.top_p, r.max_new_tokens, r.seed)
    with EngineHost(cfg) as host:
        for spec in plan.generated:
            if ev.missing_answers(spec.name):
                with host.policy(spec) as (engines, tokenizer):
                    ev.generate(spec.name, PolicyAnswerer(engines, tokenizer, prompts, sampling))
        reference = plan.reference_answers()
        judge = None
        ref = plan.reference.name
        for spec in plan.policies:
            if ev.missing_judgments(spec.name, ref):
                judge = judge or host.judge(prompts)
                ev.judge(spec.name, ref, reference, judge)
    results = {
        spec.name: {"path": spec.path, **ev.metrics(spec.name, plan.reference.name, reference)}
        for spec in plan.policies
    }
    header = {
        "name": Path(cfg.eval.output_dir).name,
        "eval_set": cfg.eval.data_path,
        "records": len(ev.records),
        "reference": plan.reference.description,
        "judge": judge_description(cfg),
        "lc_method": cfg.eval.lc_method,
        "temperature": r.eval_temperature,
        "seconds": round(time.time() - started, 1),
    }
    path = ev.write(header, results)
    print(markdown_table(results))
    print(f"results: {path}")
    return path
