"""The GRM's three scores of each answer (``eval.grm_scores``, and PersonaFeedback's
``preference_grm`` task), cached in ``scores/<name>.jsonl`` like answers and judgments
(fingerprinted by question and answer); invalid GRM outputs are counted and left out of
the means."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import fmean
from typing import Any

from cpe.data.records import Record
from cpe.eval.cache import JsonlCache, digest
from cpe.protocols import RewardModel

DIMENSIONS = ("helpfulness", "personalization", "naturalness")


def answer_digests(records: Sequence[Record], answers: Mapping[str, str]) -> dict[str, str]:
    return {r.id: digest(r.question, answers[r.id]) for r in records}


def fill_scores(
    cache: JsonlCache,
    records: Sequence[Record],
    answers: Mapping[str, str],
    grm: RewardModel,
    desc: str,
    progress: bool = True,
) -> None:
    digests = answer_digests(records, answers)
    todo = [r for r in records if cache.fresh((r.id,), digests[r.id]) is None]

    def rows(chunk):
        results = grm.score([(r, answers[r.id]) for r in chunk])
        return [_row(r, res, digests[r.id]) for r, res in zip(chunk, results, strict=True)]

    cache.fill(todo, rows, desc, "score", progress)


def _row(record: Record, result: Any, fingerprint: str) -> dict[str, Any]:
    judgement = result.judgement
    scores = judgement.scores if judgement is not None else (None, None, None)
    return {
        "id": record.id,
        "digest": fingerprint,
        "valid": bool(result.valid),
        "reward": result.reward,
        **dict(zip(DIMENSIONS, scores, strict=True)),
    }


def fresh_scores(
    cache: JsonlCache, records: Sequence[Record], answers: Mapping[str, str]
) -> dict[str, dict[str, Any] | None]:
    digests = answer_digests(records, answers)
    return {r.id: cache.fresh((r.id,), digests[r.id]) for r in records}


def score_metrics(rows: Sequence[Mapping[str, Any] | None]) -> dict[str, float | None]:
    valid = [r for r in rows if r is not None and r["valid"]]
    out: dict[str, float | None] = {"grm_invalid": float(len(rows) - len(valid))}
    for key in ("reward", *DIMENSIONS):
        # A scalar reward model (grm.backend=bt) gives no dimension scores.
        values = [r[key] for r in valid if r[key] is not None]
        out[f"grm_{key}"] = fmean(values) if values else None
    return out
