"""Judgments of one policy's answers against the reference answers, cached per order.

A row of ``judgments/<policy>.jsonl``: ``{"id", "order", "p_first", "source", "raw",
"attempts"}``; ``order`` is ``pr`` (policy shown as A) or ``rp`` (reference as A).
A policy's preference for an item is P(policy better) averaged over its valid orders;
an item with no valid order is invalid and left out of every rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict

from tqdm import tqdm

from cpe.data.records import Record
from cpe.eval.cache import JsonlCache
from cpe.eval.judges import PairwiseJudge

ORDERS = ("pr", "rp")
CHUNK = 16


def orders(both: bool) -> tuple[str, ...]:
    return ORDERS if both else ORDERS[:1]


def fill_judgments(
    cache: JsonlCache,
    records: Sequence[Record],
    policy_answers: Mapping[str, str],
    reference_answers: Mapping[str, str],
    judge: PairwiseJudge,
    both_orders: bool,
    desc: str,
    progress: bool = True,
) -> None:
    todo = [(r, o) for o in orders(both_orders) for r in records if (r.id, o) not in cache]
    with tqdm(total=len(todo), desc=desc, unit="judgment", disable=not progress) as bar:
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start : start + CHUNK]
            items = [_item(r, o, policy_answers[r.id], reference_answers[r.id]) for r, o in chunk]
            verdicts = judge.judge(items)
            cache.add(
                {"id": r.id, "order": o, **asdict(v)}
                for (r, o), v in zip(chunk, verdicts, strict=True)
            )
            bar.update(len(chunk))


def _item(record: Record, order: str, policy: str, reference: str) -> tuple[Record, str, str]:
    return (record, policy, reference) if order == "pr" else (record, reference, policy)


def preference(cache: JsonlCache, record_id: str, both_orders: bool) -> float | None:
    """P(policy better) for one item, or None when no order gave a valid verdict."""
    values = []
    for order in orders(both_orders):
        row = cache.get((record_id, order))
        if row is None or row["p_first"] is None:
            continue
        values.append(row["p_first"] if order == "pr" else 1.0 - row["p_first"])
    return sum(values) / len(values) if values else None


def invalid_orders(cache: JsonlCache, ids: Sequence[str], both_orders: bool) -> int:
    return sum(
        1
        for rid in ids
        for order in orders(both_orders)
        if (row := cache.get((rid, order))) is not None and row["p_first"] is None
    )
