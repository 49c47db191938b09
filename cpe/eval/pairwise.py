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
        ev, e, r = plan.evaluation, cfg.eval, cfg.rollout
        prompts = PromptSet.from_config(cfg.prompts)
        sampling = eval_sampling(r.eval_temperature, r.top_p, r.max_new_tokens, r.seed)
        for spec in plan.generated:
            if ev.missing_answers(spec.name):
                engines, tokenizer = host.policy(spec.model_path)
                ev.generate(spec.name, PolicyAnswerer(engines, tokenizer, prompts, sampling))
        reference, ref = plan.reference_answers(), plan.reference.name
        if e.grm_scores and any(ev.missing_scores(p.name) for p in plan.policies):
            grm = host.grm(prompts)
            for spec in plan.policies:
                ev.score(spec.name, grm)
        if any(ev.missing_judgments(p.name, ref) for p in plan.policies):
            judge = host.judge(prompts)
            for spec in plan.policies:
                ev.judge(spec.name, ref, reference, judge)
        return {
            spec.name: {"path": spec.path, **ev.metrics(spec.name, ref, reference)}
            for spec in plan.policies
        }

    def reference(self, plan: EvalPlan) -> str:
        return plan.reference.description
