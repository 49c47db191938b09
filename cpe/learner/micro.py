"""How a rank cuts its rows into micro-batches: a fixed number of rows, or as many
consecutive rows as fit a token budget (``learner.micro_batch_tokens``).

Rows stay in order, and a prompt's answers and edits are contiguous after the shuffle
(``group.grouped_permutation``), so they mostly share a micro-batch and its prompt
forward (``cpe.learner.prefix``); a cut inside a group only loses that sharing. A
micro-batch costs its rows times its longest row (the padding after each row's last real
token is trimmed away, ``TensorBatch.trimmed``), so the budget bounds that product:
short rows travel many to a pass, long ones few.
Ranks must run the same number of passes (ZeRO pairs their collectives), so the rank
with fewer micro-batches halves its costliest ones until the counts match
(:func:`split_to`). Pure functions: no torch.distributed here.
"""

from __future__ import annotations

from collections.abc import Sequence

Bounds = list[tuple[int, int]]  # [start, end) row ranges, consecutive, covering all rows


def row_bounds(n_rows: int, rows: int) -> Bounds:
    """Consecutive chunks of ``rows`` rows, the last possibly shorter."""
    if rows < 1:
        raise ValueError(f"micro-batch rows must be >= 1, got {rows}")
    return [(a, min(a + rows, n_rows)) for a in range(0, n_rows, rows)]


def cost(lengths: Sequence[int], bounds: tuple[int, int]) -> int:
    """Padded tokens of the rows ``bounds``: rows x the longest of them."""
    a, b = bounds
    return (b - a) * max(lengths[a:b])


def token_bounds(lengths: Sequence[int], budget: int) -> Bounds:
    """Consecutive rows while rows x longest <= ``budget``; a row longer than the budget
    travels alone."""
    if budget < 1:
        raise ValueError(f"token budget must be >= 1, got {budget}")
    bounds: Bounds = []
    start, longest = 0, 0
    for i, length in enumerate(lengths):
        grown = max(longest, length)
        if i > start and (i - start + 1) * grown > budget:
            bounds.append((start, i))
            start, grown = i, length
        longest = grown
    if len(lengths):
        bounds.append((start, len(lengths)))
    return bounds


def split_to(bounds: Bounds, lengths: Sequence[int], count: int) -> Bounds:
    """``bounds`` with the costliest splittable micro-batch halved, again and again,
    until there are ``count``."""
    out = list(bounds)
    while len(out) < count:
        splittable = [i for i, (a, b) in enumerate(out) if b - a > 1]
        if not splittable:
            raise ValueError(f"{len(lengths)} rows cannot make {count} micro-batches")
        i = max(splittable, key=lambda j: cost(lengths, out[j]))
        a, b = out[i]
        mid = (a + b) // 2
        out[i : i + 1] = [(a, mid), (mid, b)]
    return out
