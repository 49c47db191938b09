"""The GRM's three scores of each policy answer (``eval.grm_scores``), cached in
``scores/<policy>.jsonl`` like answers and judgments; invalid GRM outputs are counted
and left out of the means."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import fmean
from typing import Any

from tqdm import tqdm

from cpe.data.records import Record
from cpe.eval.cache import JsonlCache
from cpe.protocols import RewardModel

CHUNK = 16
DIMENSIONS = ("helpfulness", "personalization", "naturalness")


def fill_scores(
    cache: JsonlCache,
    records: Sequence[Record],
    answers: Mapping[str, str],
    grm: RewardModel,
    desc: str,
    progress: bool = True,
) -> None:
    todo = [r for r in records if (r.id,) not in cache]
    with tqdm(total=len(todo), desc=desc, unit="score", disable=not progress) as bar:
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start : start + CHUNK]
            results = grm.score([(r, answers[r.id]) for r in chunk])
            cache.add(_row(r, res) for r, res in zip(chunk, results, strict=True))
            bar.update(len(chunk))


def _row(record: Record, result: Any) -> dict[str, Any]:
    judgement = result.judgement
    scores = judgement.scores if judgement is not None else (None, None, None)
    return {
        "id": record.id,
        "valid": bool(result.valid),
        "reward": result.reward,
        **dict(zip(DIMENSIONS, scores, strict=True)),
    }


def score_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    valid = [r for r in rows if r["valid"]]
    out: dict[str, float | None] = {"grm_invalid": float(len(rows) - len(valid))}
    for key in ("reward", *DIMENSIONS):
        out[f"grm_{key}"] = fmean(r[key] for r in valid) if valid else None
    return out
