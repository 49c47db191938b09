"""Judgments of one policy's answers against the reference answers, cached per order.

A row of ``judgments/<policy>-vs-<ref>.jsonl``: ``{"id", "order", "digest", "p_first",
"source", "raw", "attempts"}``; ``order`` is ``pr`` (policy shown as A) or ``rp``
(reference as A); ``digest`` fingerprints the question and both answers, so a row made
from other answers is judged again rather than reused. A policy's preference for an item
is P(policy better) averaged over its valid orders; an item with no valid order is
invalid and left out of every rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict

from cpe.data.records import Record
from cpe.eval.cache import JsonlCache, digest
from cpe.eval.judges import PairwiseJudge

ORDERS = ("pr", "rp")


def orders(both: bool) -> tuple[str, ...]:
    return ORDERS if both else ORDERS[:1]


class Pairs:
    """The (policy answer, reference answer) pair of every record, with fingerprints."""

    def __init__(
        self, records: Sequence[Record], policy: Mapping[str, str], reference: Mapping[str, str]
    ):
        self.records = list(records)
        self.policy, self.reference = policy, reference
        self.digests = {r.id: digest(r.question, policy[r.id], reference[r.id]) for r in records}

    def item(self, record: Record, order: str) -> tuple[Record, str, str]:
        a, b = self.policy[record.id], self.reference[record.id]
        return (record, a, b) if order == "pr" else (record, b, a)

    def missing(self, cache: JsonlCache, both_orders: bool) -> list[tuple[Record, str]]:
        return [
            (r, o)
            for o in orders(both_orders)
            for r in self.records
            if cache.fresh((r.id, o), self.digests[r.id]) is None
        ]


def fill_judgments(
    cache: JsonlCache,
    pairs: Pairs,
    judge: PairwiseJudge,
    both_orders: bool,
    desc: str,
    progress: bool = True,
) -> None:
    def rows(chunk):
        verdicts = judge.judge([pairs.item(r, o) for r, o in chunk])
        return [
            {"id": r.id, "order": o, "digest": pairs.digests[r.id], **asdict(v)}
            for (r, o), v in zip(chunk, verdicts, strict=True)
            if v.source != "transient"  # not cached: a rerun asks again
        ]

    cache.fill(pairs.missing(cache, both_orders), rows, desc, "judgment", progress)


def preference(cache: JsonlCache, pairs: Pairs, record_id: str, both_orders: bool) -> float | None:
    """P(policy better) for one item, or None when no order gave a valid verdict."""
    values = []
    for order in orders(both_orders):
        row = cache.fresh((record_id, order), pairs.digests[record_id])
        if row is None or row["p_first"] is None:
            continue
        values.append(row["p_first"] if order == "pr" else 1.0 - row["p_first"])
    return sum(values) / len(values) if values else None


def invalid_orders(cache: JsonlCache, pairs: Pairs, both_orders: bool) -> int:
    """(item, order) verdicts that are invalid or missing (a transport failure)."""
    return sum(
        1
        for r in pairs.records
        for order in orders(both_orders)
        if (row := cache.fresh((r.id, order), pairs.digests[r.id])) is None
        or row["p_first"] is None
    )
