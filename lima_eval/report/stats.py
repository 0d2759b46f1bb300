"""Vectorised statistics over judgments: win rates, Bradley-Terry ratings and the length-controlled win rate,
each with a 95% interval over prompts that keeps its coverage (tests/test_coverage.py checks that by
simulation, n = 5 to 2,000 prompts). numpy only; no per-judgment Python loops.

A judgment is one row of a PairTable, oriented to a (model, baseline, judge) row of the report:
`score` is the model's share of the win (1 win, 0.5 tie, 0 loss; continuous for weighted or logprob
judges) and `verdict` its discrete outcome (+1 win, 0 tie, -1 loss).

Intervals take the prompt as the unit: all judgments of one prompt (both orders, several annotators) stay
together. Where the data cannot support a figure, the functions say why in a short reason that the report
prints as "n/a (reason)". docs/report.md has the methods and the coverage they reach.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Any

import numpy as np

LEVEL = 0.95
LC_MIN_SIDE = 5  # length control: at least this many prompts where the model's answer is longer, as many shorter
LC_MIN_SHARE = 0.10  # ... and each side at least this share of the prompts


@dataclass
class PairTable:
    prompt: np.ndarray  # int: index of the prompt (intervals cluster by prompt)
    row: np.ndarray  # int: index of the (model, baseline, judge) row
    score: np.ndarray  # float in [0, 1]
    verdict: np.ndarray  # int8: +1 / 0 / -1
    len_model: np.ndarray  # float: the model's answer length in characters (nan when unknown)
    len_base: np.ndarray

    @classmethod
    def empty(cls) -> PairTable:
        z = np.zeros(0)
        return cls(z.astype(np.int64), z.astype(np.int64), z, z.astype(np.int8), z, z)

    def __len__(self) -> int:
        return len(self.score)


def per_prompt_sums(t: PairTable, n_rows: int, n_prompts: int) -> tuple[np.ndarray, np.ndarray]:
    """(P x 4R) sums of [score, win, tie, loss] and (P x R) counts, per prompt and row."""
    cell = t.prompt * n_rows + t.row
    size = n_prompts * n_rows
    counts = np.bincount(cell, minlength=size).reshape(n_prompts, n_rows).astype(np.float64)
    parts = [np.bincount(cell, weights=w, minlength=size).reshape(n_prompts, n_rows)
             for w in (t.score, t.verdict == 1, t.verdict == 0, t.verdict == -1)]
    return np.concatenate(parts, axis=1), counts


# --- critical values and rates --------------------------------------------------------------------


def critical(level: float = LEVEL, df: int | None = None) -> float:
    """Two-sided critical value at `level`: the normal's, or Student's t with df degrees of freedom."""
    if df is None:
        return NormalDist().inv_cdf((1 + level) / 2)
    return _t_quantile((1 + level) / 2, int(df))


@lru_cache(maxsize=1024)
def _t_quantile(q: float, df: int) -> float:
    """Student's t quantile for q > 0.5: bisection on the CDF, the density integrated by Simpson's rule
    (numpy has no t distribution, and scipy is not a dependency)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, not {df}")
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(x: float) -> float:
        u = np.linspace(0.0, x, 2001)
        f = np.exp(log_c - (df + 1) / 2 * np.log1p(u * u / df))
        return 0.5 + x / 6000 * float(f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())

    lo, hi = 0.0, 2.0
    while cdf(hi) < q:
        lo, hi = hi, 2 * hi
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < q else (lo, mid)
    return (lo + hi) / 2


def wilson(rate: np.ndarray, n_eff: np.ndarray, crit: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson's score interval for a rate seen on n_eff (effective) observations; vectorised."""
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.asarray(crit) ** 2 / n_eff
        spread = np.clip(rate * (1 - rate), 0.0, None)
        centre = (rate + k / 2) / (1 + k)
        half = np.sqrt(k * spread + k * k / 4) / (1 + k)
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


# Each judgment's value towards a rate, from the model's side (score: its share of the win, 1 / 0.5 / 0 or
# continuous; verdict: +1 win, 0 tie, -1 loss); a rate is the mean of the values. The report's rows,
# `lima-eval check` and checkpoint selection all count through these.
RATES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "win_rate": lambda score, verdict: np.asarray(score, dtype=np.float64),  # a tie half; continuous as given
    "discrete_win_rate": lambda score, verdict: (np.asarray(verdict, dtype=np.float64) + 1) / 2,  # 1 / 0.5 / 0
    "equal_or_better": lambda score, verdict: (np.asarray(verdict) >= 0).astype(np.float64),  # a win or a tie
}


def rate_values(metric: str, score: Any, verdict: Any) -> np.ndarray:
    """Each judgment's value towards `metric` (one of RATES); the rate is their mean."""
    return RATES[metric](score, verdict)


def clustered_rates(sums: np.ndarray, counts: np.ndarray, binary: np.ndarray, level: float = LEVEL
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of (P x K) per-prompt sums and counts of values in [0, 1]: the rate (sum / count) and its
    interval, nan where fewer than two prompts have data. `binary`: (K,) whether every value is 0 or 1.

    Wilson's score interval on the Kish effective sample size n_eff = r (1 - r) / V, V the prompt-clustered
    (sandwich) variance of the rate r, with Student's t on G - 1 degrees of freedom (G prompts) as the
    critical value (the degrees-of-freedom adjustment of survey statistics, Korn and Graubard 1998). With one
    0/1 value per prompt n_eff = n exactly; otherwise (ties, continuous scores, several judgments per prompt)
    V is estimated and carries the small-sample factor G / (G - 1). The t quantile is what keeps coverage
    at a handful of prompts: Wilson with the normal quantile covers a fair coin 87.5% of the time at n = 4,
    and calls five wins out of five significant where the exact binomial test does not. Values that are all
    equal have no spread to estimate V from: then n_eff = G (as if each prompt were one 0/1 value).
    """
    n = counts.sum(axis=0)
    prompts = (counts > 0).sum(axis=0)
    single = np.asarray(binary, dtype=bool) & (counts.max(axis=0, initial=0) <= 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = sums.sum(axis=0) / n
        resid = ((sums - rate * counts) ** 2).sum(axis=0)
        resid = np.where(single, resid, resid * prompts / (prompts - 1))  # CR1: unbiased where V is estimated
        spread = rate * (1 - rate)
        measured = (resid > 0) & (spread > 0)
        n_eff = np.where(measured, spread * n ** 2 / np.where(measured, resid, 1.0), prompts)
    crit = np.array([critical(level, g - 1) if g >= 2 else np.nan for g in prompts])
    lo, hi = wilson(rate, n_eff, crit)
    few = prompts < 2
    return rate, np.where(few, np.nan, lo), np.where(few, np.nan, hi)


@dataclass
class RowStats:
    """Per row: the AlpacaEval-style figures and their intervals (all rates are fractions; nan = n/a)."""

    n: np.ndarray
    prompts: np.ndarray  # prompts with at least one readable verdict
    wins: np.ndarray
    ties: np.ndarray
    losses: np.ndarray
    win_rate: np.ndarray  # mean score (ties half; continuous preferences averaged)
    standard_error: np.ndarray  # sample standard deviation of the scores / sqrt(n)
    discrete_win_rate: np.ndarray  # (wins + ties / 2) / n
    equal_or_better: np.ndarray  # (wins + ties) / n
    win_rate_ci: tuple[np.ndarray, np.ndarray]
    discrete_win_rate_ci: tuple[np.ndarray, np.ndarray]
    equal_or_better_ci: tuple[np.ndarray, np.ndarray]
    prompt_sums: np.ndarray  # (P x 4R) per prompt [score, win, tie, loss] sums, reused for Bradley-Terry
    prompt_counts: np.ndarray  # (P x R)


def row_stats(t: PairTable, n_rows: int, n_prompts: int, level: float = LEVEL) -> RowStats:
    sums, counts = per_prompt_sums(t, n_rows, max(1, n_prompts))
    cell = t.prompt * n_rows + t.row
    rate, ci = {}, {}
    with np.errstate(invalid="ignore", divide="ignore"):
        n = np.bincount(t.row, minlength=n_rows).astype(np.float64)
        for key in RATES:
            v = rate_values(key, t.score, t.verdict)
            rate[key] = np.bincount(t.row, weights=v, minlength=n_rows) / n
            by_prompt = np.bincount(cell, weights=v, minlength=counts.size).reshape(counts.shape)
            binary = np.bincount(t.row, weights=(v != 0) & (v != 1), minlength=n_rows) == 0
            ci[key] = clustered_rates(by_prompt, counts, binary, level)[1:]
        s2 = np.bincount(t.row, weights=t.score ** 2, minlength=n_rows)
        wins = np.bincount(t.row, weights=t.verdict == 1, minlength=n_rows)
        ties = np.bincount(t.row, weights=t.verdict == 0, minlength=n_rows)
        mean = rate["win_rate"]
        var = (s2 - n * mean ** 2) / (n - 1)
        se = np.sqrt(np.maximum(var, 0.0)) / np.sqrt(n)
        return RowStats(
            n=n, prompts=(counts > 0).sum(axis=0), wins=wins, ties=ties, losses=n - wins - ties, win_rate=mean,
            standard_error=se, discrete_win_rate=rate["discrete_win_rate"], equal_or_better=rate["equal_or_better"],
            win_rate_ci=ci["win_rate"], discrete_win_rate_ci=ci["discrete_win_rate"],
            equal_or_better_ci=ci["equal_or_better"], prompt_sums=sums, prompt_counts=counts)


def longer_answer_share(t: PairTable, n_rows: int, n_prompts: int, level: float = LEVEL
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the share of decisive verdicts (lengths known and different) that went to the longer answer,
    and its interval (clustered Wilson, as for the win rate); nan where no verdict qualifies."""
    known = np.isfinite(t.len_model) & np.isfinite(t.len_base)
    delta = np.where(known, t.len_model - t.len_base, 0.0)
    decisive = known & (t.score != 0.5) & (delta != 0)
    hit = decisive & ((t.score > 0.5) == (delta > 0))
    cell = t.prompt * n_rows + t.row
    shape = (max(1, n_prompts), n_rows)
    hits, counts = [np.bincount(cell, weights=v, minlength=shape[0] * n_rows).reshape(shape) for v in (hit, decisive)]
    return clustered_rates(hits, counts, np.ones(n_rows, dtype=bool), level)


# --- Bradley-Terry --------------------------------------------------------------------------------


def bradley_terry(wins: np.ndarray, iterations: int = 200, prior: float = 1.0) -> np.ndarray:
    """Strengths from win matrices (... x M x M; wins[i, j] = score model i earned against j, ties as half).

    Hunter's MM algorithm, vectorised over any leading axes. `prior` adds that many virtual ties to every
    pair that met (one, by default: negligible against hundreds of judgments, but a model that won all of
    six comparisons gets a large finite rating, not an infinite one). Returns log strengths (natural log),
    centred per leading index.
    """
    w = np.asarray(wins, dtype=np.float64)
    games = w + np.swapaxes(w, -1, -2)
    met = games > 0
    w = w + prior / 2 * met
    games = games + prior * met
    total_wins = w.sum(axis=-1)
    p = np.ones(w.shape[:-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        for _ in range(iterations):
            denom = (games / (p[..., :, None] + p[..., None, :])).sum(axis=-1)
            new = np.where(denom > 0, total_wins / denom, p)
            new = new / np.exp(np.log(np.where(new > 0, new, 1.0)).mean(axis=-1, keepdims=True))
            if np.allclose(new, p, rtol=1e-9, atol=1e-12):
                p = new
                break
            p = new
        return np.log(p)


def elo_scale(log_strength_vs_anchor: Any) -> Any:
    """A log strength relative to the anchor on the Elo scale: the anchor at 1000, 400 points = 10:1 odds."""
    return 1000.0 + 400.0 / np.log(10.0) * log_strength_vs_anchor


def elo(log_strength: np.ndarray, anchor: int) -> np.ndarray:
    """Log strengths on the Elo scale with the anchor model at 1000."""
    return elo_scale(log_strength - log_strength[..., anchor:anchor + 1])


def _linked(pairs: np.ndarray, games: np.ndarray, n_models: int, anchor: int) -> np.ndarray:
    """(M,) whether a chain of judged pairs links each model to the anchor."""
    seen = np.zeros(n_models, dtype=bool)
    seen[anchor] = True
    met = pairs[games > 0]
    while True:
        grown = seen.copy()
        grown[met[seen[met[:, 0]], 1]] = True
        grown[met[seen[met[:, 1]], 0]] = True
        if (grown == seen).all():
            return seen
        seen = grown


def bradley_terry_intervals(prompt_won: np.ndarray, prompt_games: np.ndarray, pairs: np.ndarray, n_models: int,
                            anchor: int, level: float = LEVEL, prior: float = 1.0
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log strengths relative to the anchor with their intervals, per model (nan: no judgments link it to
    the anchor; intervals nan with fewer than two prompts).

    prompt_won, prompt_games: (P x R) per prompt and pair, the score pairs[r, 0] earned against pairs[r, 1]
    (ties half) and the number of judgments. The point estimate is bradley_terry's (one virtual tie per
    pair). The interval is Wald's on the log strength with the larger of two variances: the model-based
    one (the inverse Fisher information, virtual ties included: for two models this is the empirical-logit
    interval, which holds at n = 5) and the prompt-clustered sandwich with the G / (G - 1) correction (which
    holds when judgments of a prompt are correlated).
    """
    games = prompt_games.sum(axis=0)
    won = prompt_won.sum(axis=0)
    wins = np.zeros((n_models, n_models))
    np.add.at(wins, (pairs[:, 0], pairs[:, 1]), won)
    np.add.at(wins, (pairs[:, 1], pairs[:, 0]), games - won)
    beta = bradley_terry(wins, prior=prior)
    beta = beta - beta[anchor]
    linked = _linked(pairs, games, n_models, anchor)
    free = np.flatnonzero(linked & (np.arange(n_models) != anchor))
    lo, hi = np.full(n_models, np.nan), np.full(n_models, np.nan)
    lo[anchor] = hi[anchor] = 0.0
    beta = np.where(linked, beta, np.nan)
    n_clusters = int((prompt_games.sum(axis=1) > 0).sum())
    if free.size == 0 or n_clusters < 2:  # an interval needs two prompts, as for the rates
        return beta, lo, hi
    design = np.zeros((len(pairs), n_models))
    design[np.arange(len(pairs)), pairs[:, 0]] = 1.0
    design[np.arange(len(pairs)), pairs[:, 1]] = -1.0
    design = design[:, free]
    p = 1 / (1 + np.exp(-(beta[pairs[:, 0]] - beta[pairs[:, 1]])))
    p = np.where(np.isfinite(p), p, 0.5)  # pairs outside the anchor's component: their design rows are zero
    weight = (games + prior * (games > 0)) * p * (1 - p)
    inverse = np.linalg.inv((design * weight[:, None]).T @ design)
    score = (prompt_won - prompt_games * p) @ design  # (P x k): each prompt's contribution to the score
    robust = inverse @ (score.T @ score) @ inverse * (n_clusters / (n_clusters - 1))
    half = critical(level) * np.sqrt(np.maximum(np.diag(inverse), np.diag(robust)))
    lo[free], hi[free] = beta[free] - half, beta[free] + half
    return beta, lo, hi


# --- length control -------------------------------------------------------------------------------


@dataclass
class LengthControl:
    """The length-controlled win rate of one row, its interval, or why the data cannot support it."""

    value: float | None = None
    low: float | None = None
    high: float | None = None
    na: str | None = None


def _logistic_fit(y: np.ndarray, x: np.ndarray, iterations: int = 50) -> np.ndarray:
    """(intercept, slope) of the logistic fit y ~ sigmoid(a + b x) (y may be continuous), by Newton's method."""
    X = np.stack([np.ones_like(x), x], axis=1)
    beta = np.zeros(2)
    ridge = 1e-6 * np.eye(2)  # keeps Newton finite when the preference is perfectly separable
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(X @ beta)))
        grad = X.T @ (y - p) - ridge @ beta
        hess = (X * (p * (1 - p))[:, None]).T @ X + ridge
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    return beta


def _separated(y: np.ndarray, delta: np.ndarray) -> bool:
    """Whether 0/1 verdicts split exactly by length difference (the logistic fit then has no finite solution)."""
    if not np.isin(y, (0.0, 1.0)).all():
        return False
    ones, zeros = delta[y == 1], delta[y == 0]
    return not ones.size or not zeros.size or ones.min() >= zeros.max() or ones.max() <= zeros.min()


def length_controlled(score: np.ndarray, len_model: np.ndarray, len_base: np.ndarray, prompt: np.ndarray,
                      level: float = LEVEL) -> LengthControl:
    """The length-controlled win rate with its interval, or the reason there is none.

    A logistic model of the preference on a model term and tanh of the standardised length difference:
    P(model preferred) = sigmoid(theta + phi * tanh(delta / sd(delta))), fitted by Newton's method on the
    (possibly continuous) scores; the length-controlled win rate is sigmoid(theta), the prediction at zero
    length difference. AlpacaEval's published LC also has an instruction-difficulty term (not available
    here), so numbers differ from theirs.

    That prediction is only read off the data where there are prompts on both sides of zero: at least
    LC_MIN_SIDE prompts (and LC_MIN_SHARE of them) where the model's answer is longer, and as many where it
    is shorter; otherwise it is an extrapolation and the reason is returned instead. The interval is Wald's
    on theta with the prompt-clustered sandwich variance, the CR1 small-sample factor G / (G - 1) and
    Student's t with G - 1 degrees of freedom (G prompts), mapped through the sigmoid.
    """
    ok = np.isfinite(len_model) & np.isfinite(len_base)
    if not ok.any():
        return LengthControl(na="answer lengths unknown")
    y, delta = score[ok], (len_model - len_base)[ok]
    _, cluster = np.unique(prompt[ok], return_inverse=True)
    n_clusters = int(cluster.max()) + 1
    longer, shorter = np.unique(cluster[delta > 0]).size, np.unique(cluster[delta < 0]).size
    need = max(LC_MIN_SIDE, math.ceil(LC_MIN_SHARE * n_clusters))
    if min(longer, shorter) < need:
        return LengthControl(na=f"too little length overlap: the model's answer is longer on {longer} and "
                                f"shorter on {shorter} of {n_clusters} prompts (needs {need} each)")
    if (y == y[0]).all():
        return LengthControl(na="every score is the same")
    if _separated(y, delta):
        return LengthControl(na="the verdicts split exactly by answer length")
    x = np.tanh(delta / delta.std())
    X = np.stack([np.ones_like(x), x], axis=1)
    beta = _logistic_fit(y, x)
    p = 1 / (1 + np.exp(-(X @ beta)))
    bread = np.linalg.inv((X * (p * (1 - p))[:, None]).T @ X + 1e-6 * np.eye(2))
    scores = np.zeros((n_clusters, 2))
    np.add.at(scores, cluster, X * (y - p)[:, None])
    var = bread @ (scores.T @ scores) @ bread * (n_clusters / (n_clusters - 1))
    half = critical(level, n_clusters - 1) * float(np.sqrt(max(var[0, 0], 0.0)))
    theta = float(beta[0])
    return LengthControl(value=_sigmoid(theta), low=_sigmoid(theta - half), high=_sigmoid(theta + half))


def _sigmoid(x: float) -> float:
    return 0.5 * (1.0 + math.tanh(x / 2))  # no overflow for the far ends of a wide interval


# --- agreement ------------------------------------------------------------------------------------


def agreement(x: np.ndarray, y: np.ndarray) -> dict[str, float | int | None]:
    """Two judges' verdicts on the same items (+1 first model, 0 tie, -1 second model).

    tie_discounted: LIMA's (1 if equal, 0.5 if exactly one is a tie, 0 otherwise), averaged.
    with_ties: share of identical verdicts; without_ties: the same over items neither called a tie (MT-bench).
    kappa: Cohen's kappa over the three classes.
    """
    n = len(x)
    if n == 0:
        return {"n": 0, "tie_discounted": None, "with_ties": None, "without_ties": None, "kappa": None}
    same = x == y
    one_tie = (x == 0) ^ (y == 0)
    both = (x != 0) & (y != 0)
    po = float(same.mean())
    pe = float(sum(np.mean(x == c) * np.mean(y == c) for c in (-1, 0, 1)))
    kappa = (po - pe) / (1 - pe) if pe < 1 else None
    return {"n": int(n), "tie_discounted": float(np.mean(same + 0.5 * one_tie)), "with_ties": po,
            "without_ties": float(same[both].mean()) if both.any() else None, "kappa": kappa}
