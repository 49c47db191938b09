"""``trainer.eval_every``: every k steps the eval set goes through the current policy
(the rollout engines, just synced) and the judge, against the initial policy's answers
(generated before step 1, cached in ``<run_dir>/eval/train``), and ``eval/*`` metrics
join that step's row."""

from __future__ import annotations

import json
from typing import Any

from cpe.config import CPEConfig
from cpe.eval.answers import PolicyAnswerer
from cpe.eval.evaluation import Evaluation
from cpe.eval.judges import PairwiseJudge
from cpe.eval.plan import Reference, answer_meta, judge_description, score_meta
from cpe.eval.policies import PolicySpec
from cpe.protocols import RewardModel

LOGGED = (
    "win_rate",
    "win_rate_se",
    "lc_win_rate",
    "judged",
    "invalid",
    "length_tokens",
    "length_chars",
    "persona_mention_share",
    "name_address_share",
    "grm_reward",
    "grm_helpfulness",
    "grm_personalization",
    "grm_naturalness",
)


class TrainingEvaluator:
    def __init__(
        self,
        cfg: CPEConfig,
        evaluation: Evaluation,
        answerer: PolicyAnswerer,
        judge: PairwiseJudge,
        reference: Reference,
        judgment_meta: dict[str, Any],
        grm: RewardModel | None = None,
    ):
        """``grm``: scores each eval answer too (eval.grm_scores)."""
        self.cfg = cfg
        self.evaluation = evaluation
        self.answerer = answerer
        self.judge = judge
        self.reference = reference
        self.judgment_meta = judgment_meta
        self.grm = grm
        self.every = cfg.trainer.eval_every
        self.results: dict[str, dict[str, Any]] = {}

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def prepare(self, step: int) -> None:
        """Before step 1: the initial policy's answers (what the engines hold now)."""
        self._load_results()
        if self.reference.policy is None:
            return
        name = self.reference.policy.name
        self.evaluation.answers(name, answer_meta(self.cfg, self.reference.policy))
        if self.evaluation.missing_answers(name):
            if step > 0:
                raise RuntimeError(
                    f"{self.evaluation.folder}: the initial policy's eval answers are "
                    "incomplete and the engines no longer hold that policy; evaluate with "
                    "python -m cpe.eval, or resume with trainer.eval_every=0"
                )
            self.evaluation.generate(name, self.answerer)

    def run(self, step: int) -> dict[str, float]:
        ev, name = self.evaluation, f"step_{step}"
        current = PolicySpec(name, self.cfg.logging.run_dir, f"{self.cfg.logging.run_dir}@{step}")
        ev.answers(name, answer_meta(self.cfg, current))
        ev.generate(name, self.answerer)
        if self.grm is not None:
            ev.scores(name, score_meta(self.cfg))
            ev.score(name, self.grm)
        reference = (
            self.reference.fixed
            if self.reference.fixed is not None
            else ev.answer_texts(self.reference.policy.name)
        )
        ref = self.reference.name
        ev.judgments(name, ref, self.judgment_meta)
        ev.judge(name, ref, reference, self.judge)
        metrics = ev.metrics(name, ref, reference)
        self.results[name] = {"step": step, **metrics}
        ev.write(self._header(), self.results)
        return {f"eval/{k}": float(metrics[k]) for k in LOGGED if metrics.get(k) is not None}

    def _header(self) -> dict[str, Any]:
        return {
            "name": "train",
            "eval_set": self.cfg.eval.data_path,
            "records": len(self.evaluation.records),
            "reference": self.reference.description,
            "judge": judge_description(self.cfg),
            "lc_method": self.cfg.eval.lc_method,
            "temperature": self.cfg.rollout.eval_temperature,
        }

    def _load_results(self) -> None:
        """A resumed run keeps the rows of the steps evaluated before the restart."""
        path = self.evaluation.folder / "results.json"
        if path.exists():
            self.results = json.loads(path.read_text()).get("policies", {})
