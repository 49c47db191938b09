"""One evaluation folder: the eval set, its cached answers, judgments and GRM scores,
and the per-policy metrics. Used by ``python -m cpe.eval`` and by ``trainer.eval_every``;
engines, judges and GRMs are handed in, so this module starts nothing itself.

Layout of the folder::

    answers/<name>.jsonl            + .meta.json   one row per (record, variant)
    judgments/<name>-vs-<ref>.jsonl + .meta.json   one row per (record, order)
    scores/<name>.jsonl             + .meta.json   one GRM score row per record
    results.json, results.md
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpe.data.records import Record
from cpe.eval.answers import DEFAULT_VARIANT, PROBE_VARIANTS, missing
from cpe.eval.cache import JsonlCache
from cpe.eval.grm_scores import fill_scores, fresh_scores, score_metrics
from cpe.eval.judges import PairwiseJudge
from cpe.eval.judging import Pairs, fill_judgments, invalid_orders, preference
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
        self.progress = settings.progress
        self.variants = (DEFAULT_VARIANT, *PROBE_VARIANTS) if settings.probe else (DEFAULT_VARIANT,)
        self._caches: dict[tuple[str, str], JsonlCache] = {}

    def _open(
        self, kind: str, name: str, meta: Mapping[str, Any] | None, key: Sequence[str]
    ) -> JsonlCache:
        """The cache ``<kind>/<name>.jsonl``: opened with its settings ``meta`` once (a
        mismatch with the folder raises there), then looked up with ``meta=None``."""
        if (kind, name) not in self._caches:
            if meta is None:
                raise KeyError(f"{kind}/{name} was not opened with its settings")
            path = self.folder / kind / f"{name}.jsonl"
            self._caches[kind, name] = JsonlCache(path, dict(meta), key)
        return self._caches[kind, name]

    def forget(self, name: str) -> None:
        """Deletes every cache of ``name``: its answers, scores and judgments."""
        patterns = (f"answers/{name}.*", f"scores/{name}.*", f"judgments/{name}-vs-*")
        for path in [p for pattern in patterns for p in self.folder.glob(pattern)]:
            path.unlink()
        self._caches = {
            k: v
            for k, v in self._caches.items()
            if k[1] != name and not k[1].startswith(f"{name}-vs-")
        }

    # Answers
    def answers(self, name: str, meta: Mapping[str, Any] | None = None) -> JsonlCache:
        return self._open("answers", name, meta, ("id", "variant"))

    def missing_answers(self, name: str) -> list:
        return missing(self._caches["answers", name], self.records, self.variants)

    def generate(self, name: str, answer: AnswerFn) -> None:
        todo = self.missing_answers(name)
        self._caches["answers", name].fill(todo, answer, f"answers {name}", "answer", self.progress)

    def answer_row(self, name: str, record_id: str, variant: str = DEFAULT_VARIANT) -> dict:
        return self._caches["answers", name].get((record_id, variant))

    def answer_texts(self, name: str) -> dict[str, str]:
        return {r.id: self.answer_row(name, r.id)["answer"] for r in self.records}

    # Judgments of a policy's answers against a reference's (texts given per record id)
    def judgments(
        self, policy: str, reference: str, meta: Mapping[str, Any] | None = None
    ) -> JsonlCache:
        return self._open("judgments", f"{policy}-vs-{reference}", meta, ("id", "order"))

    def pairs(self, policy: Mapping[str, str], reference: Mapping[str, str]) -> Pairs:
        return Pairs(self.records, policy, reference)

    def missing_judgments(self, cache: JsonlCache, pairs: Pairs) -> int:
        return len(pairs.missing(cache, self.settings.both_orders))

    def judge(self, cache: JsonlCache, pairs: Pairs, judge: PairwiseJudge, desc: str) -> None:
        fill_judgments(cache, pairs, judge, self.settings.both_orders, desc, self.progress)

    # GRM scores of answers (texts given per record id)
    def scores(self, name: str, meta: Mapping[str, Any] | None = None) -> JsonlCache:
        return self._open("scores", name, meta, ("id",))

    def missing_scores(self, cache: JsonlCache, texts: Mapping[str, str]) -> int:
        return sum(row is None for row in fresh_scores(cache, self.records, texts).values())

    def score(
        self, cache: JsonlCache, texts: Mapping[str, str], grm: RewardModel, desc: str
    ) -> None:
        fill_scores(cache, self.records, texts, grm, desc, self.progress)

    # Results
    def metrics(self, policy: str, reference: str, texts: Mapping[str, str]) -> dict[str, Any]:
        """Metrics of ``policy`` against ``reference`` (whose answers are ``texts``)."""
        pairs = self.pairs(self.answer_texts(policy), texts)
        cache = self._caches["judgments", f"{policy}-vs-{reference}"]
        both = self.settings.both_orders
        prefs = {r.id: preference(cache, pairs, r.id, both) for r in self.records}
        metrics = policy_metrics(
            self.records,
            self._answer_rows(policy),
            texts,
            prefs,
            self.settings.lc_method,
            invalid_orders(cache, pairs, both),
        )
        scores = self._caches.get(("scores", policy))
        if scores is not None:
            rows = fresh_scores(scores, self.records, pairs.policy)
            metrics.update(score_metrics(list(rows.values())))
        return metrics

    def write(
        self,
        header: Mapping[str, Any],
        policies: Mapping[str, Any],
        columns: Columns = TABLE_COLUMNS,
    ) -> Path:
        return write_results(self.folder, header, policies, columns)

    def _answer_rows(self, name: str) -> dict[tuple[str, str], Mapping[str, Any]]:
        cache = self._caches["answers", name]
        return {
            (r.id, v): row
            for r in self.records
            for v in self.variants
            if (row := cache.get((r.id, v))) is not None
        }
