"""The GRM client interface and the scoring policy shared by every backend.

A backend only turns ``(record, answer)`` items into raw output text
(:meth:`GRMBackend.generate`); parsing, validity, rewards and re-asks live here, so
every backend follows the spec the same way (steps 2 and 5): critiques at
``critique_temperature`` feed the edit, rewards come from a separate call at
``score_temperature``, and an output that stays unusable is invalid — ``reward=None``,
dropped by the caller, never scored 0.

One retry layer per failure kind: transport failures (HTTP errors, timeouts) are
retried inside the backend and arrive as a final ``Reply(error=...)``; the scorer
re-asks only outputs that came back empty or unparseable (``GRMResult.retryable``).
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from cpe.algo import Judgement, final_score, parse_grm_output
from cpe.algo.grm_parse import DEFAULT_WEIGHTS
from cpe.data.records import Record

log = logging.getLogger(__name__)

Item = tuple[Record, str]
CRITIQUE_TEMPERATURE = 0.9
SCORE_TEMPERATURE = 0.0
MODES = ("two_call", "single_call")
MAX_INVALID_SHARE_KEY = "grm.max_invalid_share"
_ERROR_CHARS = 120  # of the sample error, so the whole message fits one banner line


class GRMError(RuntimeError):
    """A GRM problem that is not about one item (bad config, rejected credentials)."""


@dataclass(frozen=True)
class Reply:
    """What a backend got for one item: raw text, or an ``error``.

    An error is final (the backend already retried its transport) unless
    ``retryable``: an output did come back, but empty, so asking again may help.
    """

    text: str = ""
    error: str | None = None
    retryable: bool = False
    # (token, log-prob) alternatives of the first output token, where the backend was
    # asked for them and gave them (the pairwise judge reads its preference from these).
    top_logprobs: tuple[tuple[str, float], ...] | None = None


@dataclass(frozen=True)
class GRMResult:
    """One GRM call's outcome for one item.

    ``critique`` is the parsed critique, or the output without its scores block when
    the tag is missing. ``reward`` is set only by score calls whose output parsed;
    otherwise None. ``retryable``: invalid, but the GRM answered (empty or unparseable
    output), so the scorer may ask again; False for valid results and transport failures.
    """

    text: str
    judgement: Judgement | None
    critique: str
    reward: float | None
    valid: bool
    attempts: int = 1
    error: str | None = None
    retryable: bool = False


class GRMBackend(ABC):
    """Something that can run the GRM on a batch of ``(record, answer)`` items."""

    @abstractmethod
    def generate(self, items: Sequence[Item], temperature: float) -> list[Reply]:
        """One raw output (or error) per item, in order. Item-level failures are
        returned as ``Reply(error=...)``; only whole-backend failures raise."""

    def generate_each(
        self, items: Sequence[Item], temperature: float, on_reply: Callable[[int, Reply], None]
    ) -> None:
        """``on_reply(index, reply)`` for every item, as soon as its reply is final (a
        caller can keep each one durable at once). This default generates the whole batch
        first, which is right for batching engines; a backend with independent requests
        overrides it. ``on_reply`` may run on another thread."""
        for index, reply in enumerate(self._generate_checked(items, temperature)):
            on_reply(index, reply)

    def critique(
        self, items: Sequence[Item], temperature: float = CRITIQUE_TEMPERATURE
    ) -> list[GRMResult]:
        """Critiques for editing: valid when the output is non-empty; no reward."""
        return [critique_result(r) for r in self._generate_checked(items, temperature)]

    def score(
        self,
        items: Sequence[Item],
        temperature: float = SCORE_TEMPERATURE,
        weights: Sequence[float] = DEFAULT_WEIGHTS,
        clamp: bool = False,
    ) -> list[GRMResult]:
        """Scores: valid when all three parse; reward = weighted sum of (H, P, N).

        ``clamp`` (``grm.clamp_scores``): clamp out-of-range scores instead of
        rejecting them."""
        replies = self._generate_checked(items, temperature)
        return [score_result(r, weights, clamp) for r in replies]

    def _generate_checked(self, items: Sequence[Item], temperature: float) -> list[Reply]:
        if not items:
            return []
        replies = self.generate(items, temperature)
        if len(replies) != len(items):
            raise GRMError(
                f"{type(self).__name__} returned {len(replies)} replies for {len(items)} items"
            )
        return replies


def _failed(reply: Reply) -> GRMResult:
    return GRMResult(
        reply.text, None, "", None, False, error=reply.error, retryable=reply.retryable
    )


def critique_result(reply: Reply) -> GRMResult:
    if reply.error is not None:
        return _failed(reply)
    judgement = parse_grm_output(reply.text)
    valid = bool(judgement.critique)
    error = None if valid else "empty critique"
    return GRMResult(
        reply.text, judgement, judgement.critique, None, valid, error=error, retryable=not valid
    )


def score_result(reply: Reply, weights: Sequence[float], clamp: bool = False) -> GRMResult:
    if reply.error is not None:
        return _failed(reply)
    judgement = parse_grm_output(reply.text, clamp=clamp)
    valid = judgement.valid
    reward = final_score(judgement, weights) if valid else None
    return GRMResult(
        reply.text,
        judgement,
        judgement.critique,
        reward,
        valid,
        error=judgement.error,
        retryable=not valid,
    )


def invalid_share_error(
    invalid: int, total: int, max_share: float, sample_error: str | None
) -> str | None:
    """Why a step with ``invalid`` of ``total`` invalid GRM results must stop, or None
    when the share is at most ``max_share`` (``grm.max_invalid_share``)."""
    if not total or invalid / total <= max_share:
        return None
    share = f"{_percent(invalid / total)} > {MAX_INVALID_SHARE_KEY}={_percent(max_share)}"
    text = f"{invalid} of {total} GRM results invalid this step ({share})"
    if sample_error:
        text += f"; last error: {' '.join(sample_error.split())[:_ERROR_CHARS]}"
    return text


def _percent(share: float) -> str:
    return f"{share * 100:.3g}%"


class GRMScorer:
    """The GRM as the trainer sees it: critique and score batches, with retries.

    ``two_call`` (the spec): :meth:`critique` samples at ``critique_temperature`` and
    needs only non-empty text; :meth:`score` is a separate call at ``score_temperature``.
    ``single_call``: one call at ``score_temperature`` gives both, so :meth:`critique`
    results already carry rewards (see :attr:`critique_gives_reward`).

    Retries (``grm.retries``) re-ask only the items whose output came back empty or
    unparseable, after ``backoff_s * 2**k`` seconds; transport failures were already
    retried by the backend and are final here. Note that re-asking a deterministic
    engine at temperature 0 repeats its output; guided decoding is what prevents
    format failures there. ``clamp_scores`` clamps out-of-range scores instead of
    rejecting them.
    """

    def __init__(
        self,
        backend: GRMBackend,
        mode: str = "two_call",
        weights: Sequence[float] = DEFAULT_WEIGHTS,
        critique_temperature: float = CRITIQUE_TEMPERATURE,
        score_temperature: float = SCORE_TEMPERATURE,
        retries: int = 2,
        backoff_s: float = 0.5,
        clamp_scores: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if mode not in MODES:
            raise ValueError(f"grm.mode={mode!r} is not one of {', '.join(MODES)}")
        if len(weights) != 3:
            raise ValueError(f"grm.weights needs 3 values (H, P, N), got {list(weights)}")
        if retries < 0:
            raise ValueError(f"grm.retries must be >= 0, got {retries}")
        self.backend = backend
        self.mode = mode
        self.weights = tuple(float(w) for w in weights)
        self.critique_temperature = critique_temperature
        self.score_temperature = score_temperature
        self.retries = retries
        self.backoff_s = backoff_s
        self.clamp_scores = clamp_scores
        self._sleep = sleep
        self.invalid_count = 0
        self.attempts_total = 0
        self.results_total = 0
        self.last_error: str | None = None

    @property
    def critique_gives_reward(self) -> bool:
        """True in single_call mode: critique results carry the rewards too."""
        return self.mode == "single_call"

    def critique(self, items: Sequence[Item]) -> list[GRMResult]:
        """Critiques of ``items`` for the edit step (with rewards in single_call mode)."""
        if self.mode == "single_call":
            return self.score(items)
        return self._with_retries(items, "critique")

    def score(self, items: Sequence[Item]) -> list[GRMResult]:
        """Rewards of ``items``; invalid results have ``reward=None``."""
        return self._with_retries(items, "score")

    def metrics(self) -> dict[str, float]:
        """Cumulative counters since construction or :meth:`reset_metrics`."""
        total = self.results_total
        return {
            "grm/results": float(total),
            "grm/invalid": float(self.invalid_count),
            "grm/invalid_rate": self.invalid_count / total if total else 0.0,
            "grm/attempts": float(self.attempts_total),
            "grm/attempts_per_result": self.attempts_total / total if total else 0.0,
        }

    def reset_metrics(self) -> None:
        self.invalid_count = self.attempts_total = self.results_total = 0
        self.last_error = None

    def check_invalid_share(self, max_share: float) -> None:
        """Raise :class:`GRMError` when more than ``max_share`` of the results since
        :meth:`reset_metrics` are invalid: rewards that are mostly missing would train
        the policy on the few that are left (noise)."""
        problem = invalid_share_error(
            self.invalid_count, self.results_total, max_share, self.last_error
        )
        if problem is not None:
            raise GRMError(problem)

    def _call(self, kind: str, batch: list[Item]) -> list[GRMResult]:
        if kind == "critique":
            return self.backend.critique(batch, self.critique_temperature)
        return self.backend.score(
            batch, self.score_temperature, self.weights, clamp=self.clamp_scores
        )

    def _with_retries(self, items: Sequence[Item], kind: str) -> list[GRMResult]:
        results: list[GRMResult | None] = [None] * len(items)
        pending = list(range(len(items)))
        for attempt in range(1, self.retries + 2):
            if not pending:
                break
            if attempt > 1:
                self._sleep(self.backoff_s * 2 ** (attempt - 2))
            fresh = self._call(kind, [items[i] for i in pending])
            if len(fresh) != len(pending):
                raise GRMError(f"GRM {kind} returned {len(fresh)} results for {len(pending)} items")
            for i, result in zip(pending, fresh, strict=True):
                results[i] = replace(result, attempts=attempt)
            self.attempts_total += len(pending)
            pending = [i for i in pending if results[i].retryable]
        done = [r for r in results if r is not None]
        self._count(done, kind)
        return done

    def _count(self, results: list[GRMResult], kind: str) -> None:
        invalid = [r for r in results if not r.valid]
        self.results_total += len(results)
        self.invalid_count += len(invalid)
        if invalid:
            self.last_error = next((r.error for r in reversed(invalid) if r.error), None)
            log.warning(
                "GRM %s: %d of %d results invalid after up to %d attempts (first error: %s)",
                kind,
                len(invalid),
                len(results),
                max(r.attempts for r in invalid),
                invalid[0].error,
            )
