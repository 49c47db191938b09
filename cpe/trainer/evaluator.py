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
from cpe.eval.plan import Reference, answer_meta, results_header, score_meta
from cpe.eval.policies import PolicySpec
from cpe.eval.results import TABLE_COLUMNS
from cpe.protocols import RewardModel

# Every metric of the results table, the LC standard error and the probe lengths too.
LOGGED = (
    *(key for key, _ in TABLE_COLUMNS),
    "lc_win_rate_se",
    "probe_brief_tokens",
    "probe_detailed_tokens",
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
        """Before step 1: the initial policy's answers (what the engines hold now). On a
        resume at ``step``: evaluations of later steps (made before a crash, by weights
        the resumed run will not have) are deleted."""
        self._load_results()
        for name in [n for n in self.results if self.results[n]["step"] > step]:
            self.evaluation.forget(name)
            del self.results[name]
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
        texts, reference, ref = ev.answer_texts(name), self.reference.texts(ev), self.reference.name
        if self.grm is not None:
            ev.score(ev.scores(name, score_meta(self.cfg)), texts, self.grm, f"GRM {name}")
        cache = ev.judgments(name, ref, self.judgment_meta)
        ev.judge(cache, ev.pairs(texts, reference), self.judge, f"judge {name}")
        metrics = ev.metrics(name, ref, reference)
        self.results[name] = {"step": step, **metrics}
        ev.write(self._header(), self.results)
        return {f"eval/{k}": float(metrics[k]) for k in LOGGED if metrics.get(k) is not None}

    def _header(self) -> dict[str, Any]:
        return results_header(
            self.cfg, len(self.evaluation.records), self.reference.description, name="train"
        )

    def _load_results(self) -> None:
        """A resumed run keeps the rows of the steps evaluated before the restart."""
        path = self.evaluation.folder / "results.json"
        if path.exists():
            self.results = json.loads(path.read_text()).get("policies", {})
