"""One evaluation folder: the eval set, its cached answers and judgments, and the
per-policy metrics. Used by ``python -m cpe.eval`` and by ``trainer.eval_every``;
engines and judges are handed in, so this module starts nothing itself.

Layout of the folder::

    answers/<name>.jsonl       + .meta.json   one row per (record, variant)
    judgments/<name>.jsonl     + .meta.json   one row per (record, order) vs the reference
    scores/<name>.jsonl        + .meta.json   one GRM score row per record (eval.grm_scores)
    results.json, results.md
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpe.data.records import Record
from cpe.eval.answers import DEFAULT_VARIANT, PROBE_VARIANTS, fill_answers, missing
from cpe.eval.cache import JsonlCache
from cpe.eval.grm_scores import fill_scores, score_metrics
from cpe.eval.judges import PairwiseJudge
from cpe.eval.judging import fill_judgments, invalid_orders, orders, preference
from cpe.eval.results import TABLE_COLUMNS, Columns, policy_metrics, write_results
from cpe.protocols import RewardModel

AnswerFn = Callable[[Sequence[tuple[Record, str]]], list[dict[str, Any]]]


@dataclass(frozen=True)
class EvalSettings:
    lc_method: str
    both_orders: bool
    probe: bool
    progress: bool = True


class Evaluation:
    def __init__(self, folder: Path, records: Sequence[Record], settings: EvalSettings):
        self.folder = Path(folder)
        self.records = list(records)
        self.settings = settings
        self.variants = (DEFAULT_VARIANT, *PROBE_VARIANTS) if settings.probe else (DEFAULT_VARIANT,)
        self._answers: dict[str, JsonlCache] = {}
        self._judgments: dict[str, JsonlCache] = {}
        self._scores: dict[str, JsonlCache] = {}

    # -- answers ----------------------------------------------------------------
    def answers(self, name: str, meta: Mapping[str, Any]) -> JsonlCache:
        """The answer cache of ``name`` (opened once; a settings mismatch raises here)."""
        if name not in self._answers:
            path = self.folder / "answers" / f"{name}.jsonl"
            self._answers[name] = JsonlCache(path, dict(meta), ("id", "variant"))
        return self._answers[name]

    def missing_answers(self, name: str, variants: Sequence[str] | None = None) -> list:
        return missing(self._answers[name], self.records, variants or self.variants)

    def generate(self, name: str, answer: AnswerFn, variants: Sequence[str] | None = None) -> int:
        """Generates what ``name`` lacks; returns how many answers were made."""
        todo = self.missing_answers(name, variants)
        if todo:
            fill_answers(self._answers[name], todo, answer, f"answers {name}", self.progress)
        return len(todo)

    def answer_row(self, name: str, record_id: str, variant: str = DEFAULT_VARIANT) -> dict:
        return self._answers[name].get((record_id, variant))

    def answer_texts(self, name: str) -> dict[str, str]:
        cache = self._answers[name]
        return {r.id: cache.get((r.id, DEFAULT_VARIANT))["answer"] for r in self.records}

    # -- judgments --------------------------------------------------------------
    def judgments(self, policy: str, reference: str, meta: Mapping[str, Any]) -> JsonlCache:
        """The judgments of ``policy``'s answers against ``reference``'s."""
        name = f"{policy}-vs-{reference}"
        if name not in self._judgments:
            path = self.folder / "judgments" / f"{name}.jsonl"
            self._judgments[name] = JsonlCache(path, dict(meta), ("id", "order"))
        return self._judgments[name]

    def missing_judgments(self, policy: str, reference: str) -> int:
        cache = self._judgments[f"{policy}-vs-{reference}"]
        wanted = orders(self.settings.both_orders)
        return sum((r.id, o) not in cache for r in self.records for o in wanted)

    def judge(
        self, policy: str, reference: str, texts: Mapping[str, str], judge: PairwiseJudge
    ) -> None:
        """Judges what is missing; ``texts``: the reference's answer per record id."""
        fill_judgments(
            self._judgments[f"{policy}-vs-{reference}"],
            self.records,
            self.answer_texts(policy),
            texts,
            judge,
            self.settings.both_orders,
            f"judge {policy}",
            self.progress,
        )

    # -- GRM scores -------------------------------------------------------------
    def scores(self, policy: str, meta: Mapping[str, Any]) -> JsonlCache:
        if policy not in self._scores:
            path = self.folder / "scores" / f"{policy}.jsonl"
            self._scores[policy] = JsonlCache(path, dict(meta), ("id",))
        return self._scores[policy]

    def missing_scores(self, policy: str) -> int:
        return sum((r.id,) not in self._scores[policy] for r in self.records)

    def score(self, policy: str, grm: RewardModel) -> None:
        texts = self.answer_texts(policy)
        cache = self._scores[policy]
        fill_scores(cache, self.records, texts, grm, f"GRM {policy}", self.progress)

    # -- results ----------------------------------------------------------------
    def metrics(self, policy: str, reference: str, texts: Mapping[str, str]) -> dict[str, Any]:
        cache = self._judgments[f"{policy}-vs-{reference}"]
        both = self.settings.both_orders
        prefs = {r.id: preference(cache, r.id, both) for r in self.records}
        ids = [r.id for r in self.records]
        metrics = policy_metrics(
            self.records,
            self._answer_rows(policy),
            texts,
            prefs,
            self.settings.lc_method,
            invalid_orders(cache, ids, both),
        )
        if policy in self._scores:
            scores = self._scores[policy]
            metrics.update(score_metrics([scores.get((r.id,)) for r in self.records]))
        return metrics

    def write(
        self,
        header: Mapping[str, Any],
        policies: Mapping[str, Any],
        columns: Columns = TABLE_COLUMNS,
    ) -> Path:
        return write_results(self.folder, header, policies, columns)

    @property
    def progress(self) -> bool:
        return self.settings.progress

    def _answer_rows(self, name: str) -> dict[tuple[str, str], Mapping[str, Any]]:
        cache = self._answers[name]
        return {
            (r.id, v): row
            for r in self.records
            for v in self.variants
            if (row := cache.get((r.id, v))) is not None
        }
