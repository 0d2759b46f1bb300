"""Vectorised statistics over judgments: win rates, standard errors, bootstrap intervals over prompts,
Bradley-Terry ratings and the length-controlled win rate. numpy only; no per-judgment Python loops.

A judgment is one row of a PairTable, oriented to a (model, baseline, judge) row of the report:
`score` is the model's share of the win (1 win, 0.5 tie, 0 loss; continuous for weighted or logprob
judges) and `verdict` its discrete outcome (+1 win, 0 tie, -1 loss).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

BOOTSTRAP = 1000
LEVEL = 0.95


@dataclass
class PairTable:
    prompt: np.ndarray  # int: index of the prompt (the bootstrap resamples prompts)
    row: np.ndarray  # int: index of the (model, baseline, judge) row
    score: np.ndarray  # float in [0, 1]
    verdict: np.ndarray  # int8: +1 / 0 / -1
    len_model: np.ndarray  # float: the model's answer length in characters (nan when unknown)
    len_base: np.ndarray

    @classmethod
    def empty(cls) -> "PairTable":
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


def bootstrap_weights(n_prompts: int, resamples: int = BOOTSTRAP, seed: int = 0) -> np.ndarray:
    """(B x P) how many times each prompt is drawn in each resample (prompts drawn with replacement)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_prompts, np.full(n_prompts, 1.0 / n_prompts), size=resamples).astype(np.float64)


def interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over axis 0 (nan where a resample had no data)."""
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    with warnings.catch_warnings():  # a row with no data at all has an all-nan column: its interval is nan
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanpercentile(replicates, lo, axis=0), np.nanpercentile(replicates, hi, axis=0)


@dataclass
class RowStats:
    """Per row: the AlpacaEval-style figures and bootstrap intervals (all rates are fractions)."""

    n: np.ndarray
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
    sums: np.ndarray  # (B x 4R) bootstrap replicate sums, reused for Bradley-Terry
    counts: np.ndarray  # (B x R)
    weights: np.ndarray  # (B x P) the prompt resamples, reused for length control


def row_stats(t: PairTable, n_rows: int, n_prompts: int, resamples: int = BOOTSTRAP, seed: int = 0) -> RowStats:
    with np.errstate(invalid="ignore", divide="ignore"):
        n = np.bincount(t.row, minlength=n_rows).astype(np.float64)
        s = np.bincount(t.row, weights=t.score, minlength=n_rows)
        s2 = np.bincount(t.row, weights=t.score ** 2, minlength=n_rows)
        wins = np.bincount(t.row, weights=t.verdict == 1, minlength=n_rows)
        ties = np.bincount(t.row, weights=t.verdict == 0, minlength=n_rows)
        mean = s / n
        var = (s2 - n * mean ** 2) / (n - 1)
        se = np.sqrt(np.maximum(var, 0.0)) / np.sqrt(n)
        sums, counts = per_prompt_sums(t, n_rows, max(1, n_prompts))
        w = bootstrap_weights(max(1, n_prompts), resamples, seed)
        rep_sums, rep_counts = w @ sums, w @ counts  # (B x 4R), (B x R)
        rep_n = rep_counts
        rep_win_rate = rep_sums[:, :n_rows] / rep_n
        rep_wins, rep_ties = rep_sums[:, n_rows:2 * n_rows], rep_sums[:, 2 * n_rows:3 * n_rows]
        rep_discrete = (rep_wins + rep_ties / 2) / rep_n
        rep_eob = (rep_wins + rep_ties) / rep_n
        return RowStats(
            n=n, wins=wins, ties=ties, losses=n - wins - ties, win_rate=mean, standard_error=se,
            discrete_win_rate=(wins + ties / 2) / n, equal_or_better=(wins + ties) / n,
            win_rate_ci=interval(rep_win_rate), discrete_win_rate_ci=interval(rep_discrete),
            equal_or_better_ci=interval(rep_eob), sums=rep_sums, counts=rep_counts, weights=w)


# --- Bradley-Terry --------------------------------------------------------------------------------


def bradley_terry(wins: np.ndarray, iterations: int = 200, prior: float = 1.0) -> np.ndarray:
    """Strengths from win matrices (... x M x M; wins[i, j] = score model i earned against j, ties as half).

    Hunter's MM algorithm, vectorised over any leading (bootstrap) axes. `prior` adds that many virtual ties
    to every pair that met (one, by default: negligible against hundreds of judgments, but a model that won
    all of six comparisons gets a large finite rating, not an infinite one). Returns log strengths (natural
    log), centred per leading index.
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


def elo(log_strength: np.ndarray, anchor: int) -> np.ndarray:
    """Log strengths on the Elo scale with the anchor model at 1000 (400 points = 10:1 odds)."""
    return 1000.0 + 400.0 / np.log(10.0) * (log_strength - log_strength[..., anchor:anchor + 1])


# --- length control -------------------------------------------------------------------------------


def _length_design(score: np.ndarray, len_model: np.ndarray, len_base: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(usable mask, y, tanh of the standardised length difference, delta) or None if < 2 usable."""
    ok = np.isfinite(len_model) & np.isfinite(len_base)
    if ok.sum() < 2:
        return None
    y, delta = score[ok], (len_model - len_base)[ok]
    sd = delta.std()
    return ok, y, (np.tanh(delta / sd) if sd > 0 else np.zeros_like(delta)), delta


def _logistic_fit(y: np.ndarray, x: np.ndarray, iterations: int = 50) -> tuple[float, float]:
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
    return float(beta[0]), float(beta[1])


def length_controlled(score: np.ndarray, len_model: np.ndarray, len_base: np.ndarray
                      ) -> tuple[float | None, float | None]:
    """(length-controlled win rate, share of decisive verdicts that went to the longer answer).

    A logistic model of the preference on a model term and tanh of the standardised length difference:
    P(model preferred) = sigmoid(theta + phi * tanh(delta / sd(delta))), fitted by Newton's method on the
    (possibly continuous) scores; the length-controlled win rate is sigmoid(theta), the prediction at zero
    length difference. AlpacaEval's published LC also has an instruction-difficulty term (not available
    here), so numbers differ from theirs.
    """
    design = _length_design(score, len_model, len_base)
    if design is None:
        return None, None
    _, y, x, delta = design
    decisive = (y != 0.5) & (delta != 0)
    longer = float(np.mean((y[decisive] > 0.5) == (delta[decisive] > 0))) if decisive.any() else None
    theta, _ = _logistic_fit(y, x)
    return float(1 / (1 + np.exp(-theta))), longer


def length_controlled_interval(score: np.ndarray, len_model: np.ndarray, len_base: np.ndarray,
                               prompt: np.ndarray, level: float = LEVEL) -> tuple[Any, Any]:
    """95% interval (low, high) of the length-controlled win rate.

    A refit per prompt resample would take minutes at a million judgments, so this is the interval the
    prompt bootstrap tends to: a normal interval on the intercept with the sandwich variance clustered by
    prompt, mapped through the sigmoid.
    """
    design = _length_design(score, len_model, len_base)
    if design is None:
        return None, None
    ok, y, x, _ = design
    theta, phi = _logistic_fit(y, x)
    X = np.stack([np.ones_like(x), x], axis=1)
    p = 1 / (1 + np.exp(-(X @ np.array([theta, phi]))))
    bread = np.linalg.inv((X * (p * (1 - p))[:, None]).T @ X + 1e-6 * np.eye(2))
    _, cluster = np.unique(prompt[ok], return_inverse=True)
    scores = np.zeros((cluster.max() + 1, 2))
    np.add.at(scores, cluster, X * (y - p)[:, None])
    var = bread @ (scores.T @ scores) @ bread
    half = _z(level) * float(np.sqrt(max(var[0, 0], 0.0)))
    return float(1 / (1 + np.exp(-(theta - half)))), float(1 / (1 + np.exp(-(theta + half))))


def longer_answer_share(t: PairTable, n_rows: int, weights: np.ndarray, level: float = LEVEL
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the share of decisive verdicts (lengths known and different) that went to the longer answer,
    and its bootstrap interval over the same prompt resamples (weights: B x P)."""
    known = np.isfinite(t.len_model) & np.isfinite(t.len_base)
    delta = np.where(known, t.len_model - t.len_base, 0.0)
    decisive = known & (t.score != 0.5) & (delta != 0)
    hit = decisive & ((t.score > 0.5) == (delta > 0))
    n_prompts = weights.shape[1]
    cell = t.prompt * n_rows + t.row
    per = [np.bincount(cell, weights=v, minlength=n_prompts * n_rows).reshape(n_prompts, n_rows)
           for v in (hit, decisive)]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = per[0].sum(axis=0) / per[1].sum(axis=0)
        lo, hi = interval((weights @ per[0]) / (weights @ per[1]), level)
    return share, lo, hi


def _z(level: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf((1 + level) / 2)


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
