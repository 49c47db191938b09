"""Pairwise win rates against a reference answer: raw, and length-controlled (AlpacaEval 2.0).

A judge that prefers longer answers rewards a policy for padding. The length-controlled (LC)
win rate of Dubois et al. (2024) fits a logistic GLM of the judge's preference on the length
difference and asks what the win rate would be had both answers been equally long. This module
fits it the way ``alpaca_eval`` 0.6.x does (``metrics/glm_winrate.py``), so that our numbers sit
on the same scale as the published leaderboard. Inputs are plain arrays: one preference per item
(P(policy's answer preferred); 1 win, 0 loss, 0.5 tie) and answer lengths in characters.
The ``alpaca_eval`` fit picks its L1 penalty by cross-validation, so on small eval sets (tens of
items) it often zeroes every coefficient and reports exactly 50: too little evidence for that
method. ``length_only`` (the simpler variant) fits the same two-term GLM by plain maximum
likelihood and gives an estimate at any size.

numpy only at import; scikit-learn is imported by the fit, so ``import cpe.algo`` stays light.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cpe.algo.lookup import choose

if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression

N_SPLITS = 5  # alpaca_eval's GroupKFold(n_splits=5)
CS = np.logspace(-4, 4, 10)  # LogisticRegressionCV's default grid (Cs=10), which alpaca_eval uses
RANDOM_STATE = 123
REGULARIZE_TO_BASELINE_LAMBDA = 0.2  # alpaca_eval's length_controlled_v1
_LOG_LOSS_EPS = 1e-15
UNPENALISED_C = 1e6  # liblinear needs some penalty; this one is negligible


@dataclass(frozen=True)
class Estimate:
    """A win rate in percent (0..100) and its standard error, also in percent."""

    value: float
    se: float


@dataclass(frozen=True)
class GamedBaseline:
    """Judged rows of the reference model's own length-gamed variants (verbose and concise).

    alpaca_eval appends these rows (not_gamed_baseline=0, weight lambda/2 each) so the length and
    difficulty slopes are shrunk towards what a pure length change of the reference does.
    ``std_delta_len`` is already standardised, as in alpaca_eval's ``df_gamed.csv``.
    """

    preferences: Sequence[float]
    std_delta_len: Sequence[float]
    difficulty: Sequence[float]


def _as_preferences(preferences: Sequence[float]) -> np.ndarray:
    """1-D float array; NaN (no verdict) allowed, anything else outside [0, 1] is an error."""
    p = np.asarray(preferences, dtype=float)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"preferences must be a non-empty 1-D sequence, got shape {p.shape}")
    bad = ~np.isnan(p) & ((p < 0.0) | (p > 1.0))
    if bad.any():
        raise ValueError(f"preferences must lie in [0, 1]; bad at items {np.flatnonzero(bad)[:10]}")
    return p


def _as_column(values: Sequence[float], n: int, name: str) -> np.ndarray:
    """Finite 1-D float array of length ``n`` (one value per item)."""
    x = np.asarray(values, dtype=float)
    if x.shape != (n,):
        raise ValueError(f"{name} must have one value per item ({n}), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} must be finite")
    return x


def _mean_estimate(x: np.ndarray) -> Estimate:
    """100·mean and 100·standard error of the mean (ddof=1, as pandas' ``sem``; 0 if n < 2)."""
    se = float(np.std(x, ddof=1) / np.sqrt(x.size)) if x.size > 1 else 0.0
    return Estimate(value=100.0 * float(np.mean(x)), se=100.0 * se)


def win_rate(preferences: Sequence[float]) -> Estimate:
    """Raw win rate: 100·mean preference. NaN items (no verdict) are dropped, as alpaca_eval does."""
    p = _as_preferences(preferences)
    p = p[~np.isnan(p)]
    if p.size == 0:
        raise ValueError("no judged items: every preference is NaN")
    return _mean_estimate(p)


def std_delta_len(
    policy_lengths: Sequence[float], reference_lengths: Sequence[float]
) -> np.ndarray:
    """(len_ref − len_policy) / its sample std: alpaca_eval's ``std_delta_len`` and its sign.

    Its output_1 is the reference, so a longer policy answer gives a negative value and the fitted
    length slope comes out negative, as in the published weights. Zero spread (one item, or the
    same difference everywhere) leaves length unidentifiable next to the model term: zeros then.
    """
    ref = np.asarray(reference_lengths, dtype=float)
    delta = ref - _as_column(policy_lengths, ref.size, "policy_lengths")
    sd = float(np.std(delta, ddof=1)) if delta.size > 1 else 0.0
    return delta / sd if sd > 0.0 else np.zeros_like(delta)


@functools.cache
def _l1_penalty() -> dict[str, Any]:
    """scikit-learn 1.8 deprecated ``penalty``; ``l1_ratio=1`` is the same pure L1 penalty."""
    from sklearn.linear_model import LogisticRegression

    params = inspect.signature(LogisticRegression).parameters
    return {"l1_ratio": 1.0} if params["penalty"].default == "deprecated" else {"penalty": "l1"}


def _logistic(C: float, random_state: np.random.RandomState | int) -> LogisticRegression:
    """Unfitted L1 logistic regression as alpaca_eval configures it (liblinear, no intercept)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(
        C=C, solver="liblinear", fit_intercept=False, random_state=random_state, **_l1_penalty()
    )


def _weighted_fit(
    C: float, rs: np.random.RandomState | int, x: np.ndarray, p: np.ndarray, w: np.ndarray
) -> np.ndarray:
    """Fit probabilistic labels by duplicating each row (y=1 weight p·w, y=0 weight (1−p)·w)."""
    xx = np.concatenate([x, x])
    yy = np.concatenate([np.ones(len(p)), np.zeros(len(p))])
    ww = np.concatenate([p * w, (1 - p) * w])
    keep = ww > 0
    if len(np.unique(yy[keep])) == 2:
        # zero-weight copies change nothing but make liblinear print a warning to stdout
        xx, yy, ww = xx[keep], yy[keep], ww[keep]
    model = _logistic(C, rs).fit(xx, yy, sample_weight=ww)
    return model.coef_[0]


def _continuous_log_loss(coef: np.ndarray, x: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    """alpaca_eval's CV score: weighted log loss against the probability itself, mean over rows."""
    q = np.clip(1.0 / (1.0 + np.exp(-(x @ coef))), _LOG_LOSS_EPS, 1 - _LOG_LOSS_EPS)
    return float(-np.mean(w * (p * np.log(q) + (1 - p) * np.log(1 - q))))


def _select_C(x: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    """C with the lowest summed 5-fold GroupKFold log loss, both copies of a row in one fold.

    This is LogisticRegressionCV's selection written out: alpaca_eval reaches the continuous
    score through sklearn's metadata routing, a global switch whose API keeps moving between
    versions. liblinear fits each C independently, so the loop is the same computation; a fresh
    RandomState per fold, drawn once per C in order, gives liblinear the seeds the path does.
    Fewer than 5 rows get one fold per row (alpaca_eval would raise).
    """
    from sklearn.model_selection import GroupKFold

    n = len(p)
    groups = np.concatenate([np.arange(n), np.arange(n)])
    cv = GroupKFold(n_splits=min(N_SPLITS, n))
    losses = np.zeros(len(CS))
    for train, test in cv.split(np.zeros((2 * n, 1)), groups=groups):
        train, test = train[train < n], test[test < n]  # the original rows of each fold
        rs = np.random.RandomState(RANDOM_STATE)
        for k, C in enumerate(CS):
            coef = _weighted_fit(C, rs, x[train], p[train], w[train])
            losses[k] += _continuous_log_loss(coef, x[test], p[test], w[test])
    return float(CS[int(np.argmin(losses))])


def fit_glm(x: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Coefficients of the CV-selected L1 GLM; rows with NaN preference are left out."""
    keep = ~np.isnan(p)
    x, p, w = x[keep], p[keep], w[keep]
    return _weighted_fit(_select_C(x, p, w), RANDOM_STATE, x, p, w)


def _lc_estimate(
    preferences: Sequence[float],
    policy_lengths: Sequence[float],
    reference_lengths: Sequence[float],
    difficulty: np.ndarray | None,
    gamed: GamedBaseline | None,
    penalised: bool = True,
) -> Estimate:
    """Fit the GLM and average P(policy wins) over all items with the length term set to 0.

    Columns are [tanh(std_delta_len), difficulty (if any), not_gamed=1], no intercept. A constant
    verdict leaves length nothing to explain, so it is returned as is rather than fitted.
    """
    p = _as_preferences(preferences)
    n = p.size
    tanh_len = np.tanh(
        std_delta_len(policy_lengths, _as_column(reference_lengths, n, "reference_lengths"))
    )
    judged = p[~np.isnan(p)]
    if judged.size == 0:
        raise ValueError("no judged items: every preference is NaN")
    if np.ptp(judged) == 0.0:
        return Estimate(value=100.0 * float(judged[0]), se=0.0)
    cols = [tanh_len] + ([difficulty] if difficulty is not None else []) + [np.ones(n)]
    x, w = np.column_stack(cols), np.ones(n)
    if gamed is not None:
        xg, pg = _gamed_rows(gamed)
        # gamed rows first, as alpaca_eval concatenates them (it fixes the GroupKFold folds)
        x, p = np.vstack([xg, x]), np.concatenate([pg, p])
        w = np.concatenate([np.full(len(pg), REGULARIZE_TO_BASELINE_LAMBDA / 2), w])
    coef = fit_glm(x, p, w) if penalised else _fit_unpenalised(x, p, w)
    x_test = np.column_stack([np.zeros(n)] + cols[1:])
    predicted = 1.0 / (1.0 + np.exp(-(x_test @ coef)))
    if difficulty is not None and np.ptp(difficulty) > 0:
        return _mean_estimate(predicted)  # alpaca_eval's lc_standard_error: sem of predictions
    # Every item gets the same prediction, so their sem is 0: use the fit's uncertainty.
    return Estimate(100.0 * float(predicted.mean()), 100.0 * _sandwich_se(x, p, w, coef, x_test))


def _fit_unpenalised(x: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    keep = ~np.isnan(p)
    return _weighted_fit(UNPENALISED_C, RANDOM_STATE, x[keep], p[keep], w[keep])


def _sandwich_se(
    x: np.ndarray, p: np.ndarray, w: np.ndarray, coef: np.ndarray, x_test: np.ndarray
) -> float:
    """Standard error of mean(sigmoid(x_test @ coef)) by the delta method over the robust
    (sandwich) covariance of the fit, which suits probabilistic labels."""
    keep = ~np.isnan(p)
    x, p, w = x[keep], p[keep], w[keep]
    q = 1.0 / (1.0 + np.exp(-(x @ coef)))
    hessian = (x * (w * q * (1 - q))[:, None]).T @ x
    scores = x * (w * (p - q))[:, None]
    bread = np.linalg.pinv(hessian)
    cov = bread @ (scores.T @ scores) @ bread
    t = 1.0 / (1.0 + np.exp(-(x_test @ coef)))
    grad = (x_test * (t * (1 - t))[:, None]).mean(axis=0)
    return float(np.sqrt(max(grad @ cov @ grad, 0.0)))


def _gamed_rows(gamed: GamedBaseline) -> tuple[np.ndarray, np.ndarray]:
    """Design rows [tanh(std_delta_len), difficulty, not_gamed=0] and preferences."""
    pg = _as_preferences(gamed.preferences)
    xs = np.tanh(_as_column(gamed.std_delta_len, pg.size, "gamed.std_delta_len"))
    d = _as_column(gamed.difficulty, pg.size, "gamed.difficulty")
    return np.column_stack([xs, d, np.zeros(pg.size)]), pg


def lc_alpaca_eval(
    preferences: Sequence[float],
    policy_lengths: Sequence[float],
    reference_lengths: Sequence[float],
    *,
    difficulty: Sequence[float] | None = None,
    gamed: GamedBaseline | None = None,
) -> Estimate:
    """AlpacaEval 2.0 LC win rate (``length_controlled_v1``, or ``_noreg`` when ``gamed`` is None).

    ``difficulty`` is alpaca_eval's per-instruction ``instruction_difficulty``; without it the
    column is all zeros (its L1 coefficient stays 0), which is the length-only GLM plus whatever
    ``gamed`` adds. ``gamed`` needs ``difficulty``: its rows carry their own difficulty.
    """
    if difficulty is None and gamed is not None:
        raise ValueError("gamed baseline rows need difficulty for the policy's items too")
    n = len(preferences)
    d = np.zeros(n) if difficulty is None else _as_column(difficulty, n, "difficulty")
    return _lc_estimate(preferences, policy_lengths, reference_lengths, d, gamed)


def lc_length_only(
    preferences: Sequence[float],
    policy_lengths: Sequence[float],
    reference_lengths: Sequence[float],
    *,
    difficulty: Sequence[float] | None = None,
    gamed: GamedBaseline | None = None,
) -> Estimate:
    """The simpler GLM (alpaca_eval's ``length_controlled_minimal`` terms: tanh(length) + model
    term), fitted by plain maximum likelihood instead of a cross-validated L1 penalty, so small
    eval sets get an estimate rather than a shrunk 50. ``difficulty`` and ``gamed`` are accepted
    so every LC method shares one signature, and ignored: this variant has neither term.
    """
    del difficulty, gamed
    return _lc_estimate(preferences, policy_lengths, reference_lengths, None, None, False)


LC_METHODS: dict[str, Callable[..., Estimate]] = {
    "alpaca_eval": lc_alpaca_eval,
    "length_only": lc_length_only,
}


def lc_win_rate(
    preferences: Sequence[float],
    policy_lengths: Sequence[float],
    reference_lengths: Sequence[float],
    *,
    method: str = "alpaca_eval",
    difficulty: Sequence[float] | None = None,
    gamed: GamedBaseline | None = None,
) -> Estimate:
    """Length-controlled win rate by ``method`` (a key of LC_METHODS); see each method's docs."""
    fn = choose(LC_METHODS, method, "LC method")
    return fn(preferences, policy_lengths, reference_lengths, difficulty=difficulty, gamed=gamed)
