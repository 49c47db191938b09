"""One evaluation folder: the eval set, its cached answers and judgments, and the
per-policy metrics. Used by ``python -m cpe.eval`` and by ``trainer.eval_every``;
engines and judges are handed in, so this module starts nothing itself.

Layout of the folder::

    answers/<name>.jsonl       + .meta.json   one row per (record, variant)
    judgments/<name>.jsonl     + .meta.json   one row per (record, order) vs the reference
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
from cpe.eval.judges import PairwiseJudge
from cpe.eval.judging import fill_judgments, invalid_orders, orders, preference
from cpe.eval.results import policy_metrics, write_results

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

    # -- results ----------------------------------------------------------------
    def metrics(self, policy: str, reference: str, texts: Mapping[str, str]) -> dict[str, Any]:
        cache = self._judgments[f"{policy}-vs-{reference}"]
        both = self.settings.both_orders
        prefs = {r.id: preference(cache, r.id, both) for r in self.records}
        ids = [r.id for r in self.records]
        return policy_metrics(
            self.records,
            self._answer_rows(policy),
            texts,
            prefs,
            self.settings.lc_method,
            invalid_orders(cache, ids, both),
        )

    def write(self, header: Mapping[str, Any], policies: Mapping[str, Any]) -> Path:
        return write_results(self.folder, header, policies)

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
