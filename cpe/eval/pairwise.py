"""The pairwise task (``eval.task=pairwise``): each policy's answers against the
reference's, judged in both orders; win rate, LC win rate, lengths, name-dropping,
optionally GRM scores and the controllability probe."""

from __future__ import annotations

from typing import Any

from cpe.config import CPEConfig
from cpe.eval.answers import PolicyAnswerer, eval_sampling
from cpe.eval.host import EngineHost
from cpe.eval.plan import EvalPlan, plan_eval
from cpe.eval.results import TABLE_COLUMNS
from cpe.prompts import PromptSet


class PairwiseTask:
    columns = TABLE_COLUMNS

    def plan(self, cfg: CPEConfig, progress: bool) -> EvalPlan:
        return plan_eval(cfg, progress)

    def run(self, cfg: CPEConfig, plan: EvalPlan, host: EngineHost) -> dict[str, dict[str, Any]]:
        ev, e = plan.evaluation, cfg.eval
        prompts = PromptSet.from_config(cfg.prompts)
        sampling = eval_sampling(cfg.rollout)
        for spec in plan.generated:
            if ev.missing_answers(spec.name):
                engines, tokenizer = host.policy(spec.model_path)
                ev.generate(spec.name, PolicyAnswerer(engines, tokenizer, prompts, sampling))
        ref = plan.reference
        reference = ref.texts(ev)
        if e.grm_scores:
            caches = {p.name: (ev.scores(p.name), ev.answer_texts(p.name)) for p in plan.policies}
            if any(ev.missing_scores(c, t) for c, t in caches.values()):
                grm = host.grm(prompts)
                for name, (cache, texts) in caches.items():
                    ev.score(cache, texts, grm, f"GRM {name}")
        pending = {
            p.name: (ev.judgments(p.name, ref.name), ev.pairs(ev.answer_texts(p.name), reference))
            for p in plan.policies
        }
        if any(ev.missing_judgments(c, pairs) for c, pairs in pending.values()):
            judge = host.judge(prompts)
            for name, (cache, pairs) in pending.items():
                ev.judge(cache, pairs, judge, f"judge {name}")
        return {
            spec.name: {"path": spec.path, **ev.metrics(spec.name, ref.name, reference)}
            for spec in plan.policies
        }

    def reference(self, plan: EvalPlan) -> str:
        return plan.reference.description
