"""The intervals rules decide on: the report's (lima_eval.report.stats.clustered_rates: Wilson's score
interval on the prompt-clustered effective sample size), and for a difference of two runs over their shared
prompts, the two intervals combined with the correlation the shared prompts give the two rates (MOVER)."""

from __future__ import annotations

import math

import numpy as np

from lima_eval.errors import CheckInputError
from lima_eval.report.stats import clustered_rates, rate_values

# Per prompt: the sum and the count of the values; and whether every value is 0 or 1.
Columns = tuple[np.ndarray, np.ndarray, bool]


def columns(by_prompt: dict[str, list[tuple[float, int]]], prompts: list[str], metric: str) -> Columns:
    """Per prompt: the sum and count of the metric's values (the report's, stats.rate_values), and whether
    every value is 0 or 1."""
    labels = [x for p in prompts for x in by_prompt[p]]
    index = np.repeat(np.arange(len(prompts)), [len(by_prompt[p]) for p in prompts])
    scores, verdicts = np.array([s for s, _ in labels], dtype=float), np.array([v for _, v in labels])
    values = rate_values(metric, scores, verdicts)
    sums = np.bincount(index, weights=values, minlength=len(prompts))
    counts = np.bincount(index, minlength=len(prompts)).astype(float)
    return sums, counts, bool(np.isin(values, (0.0, 1.0)).all())


def rate(sums: np.ndarray, counts: np.ndarray, binary: bool, level: float) -> tuple[float, float, float]:
    """(rate, interval low, interval high) over prompts; an error when fewer than two prompts count."""
    value, lo, hi = clustered_rates(sums[:, None], counts[:, None], np.array([binary]), level)
    if not np.isfinite(lo[0]):
        raise CheckInputError(f"only {int((counts > 0).sum())} prompt(s) to decide on: an interval needs at "
                              "least two")
    return float(value[0]), float(lo[0]), float(hi[0])


def paired_difference(new: Columns, old: Columns, level: float) -> tuple[float, float, float]:
    """new rate - old rate over the same prompts, with the MOVER interval (Zou and Donner 2008): each run's
    clustered Wilson interval, combined with the correlation of the two rates across the shared prompts."""
    (sn, cn, bn), (so, co, bo) = new, old
    pn, ln, un = rate(sn, cn, bn, level)
    po, lo, uo = rate(so, co, bo, level)
    rn, ro = sn - pn * cn, so - po * co  # each prompt's contribution to the error of each rate
    denom = float(np.sqrt((rn ** 2).sum() * (ro ** 2).sum()))
    rho = float((rn * ro).sum()) / denom if denom > 0 else 0.0
    low = pn - po - math.sqrt(max((pn - ln) ** 2 + (uo - po) ** 2 - 2 * rho * (pn - ln) * (uo - po), 0.0))
    high = pn - po + math.sqrt(max((un - pn) ** 2 + (po - lo) ** 2 - 2 * rho * (un - pn) * (po - lo), 0.0))
    return pn - po, low, high


def decide(low_ok: bool, high_ok: bool, strict: bool) -> bool:
    """Passed, given which ends of the interval are on the passing side: strict needs both, else one."""
    return bool(low_ok and high_ok) if strict else bool(low_ok or high_ok)


def at_least(low: float, high: float, threshold: float, strict: bool) -> bool:
    """A lower bound: fails when the whole interval is below it (strict: unless all of it is above)."""
    return decide(low >= threshold, high >= threshold, strict)


def at_most(low: float, high: float, threshold: float, strict: bool) -> bool:
    """An upper bound: fails when the whole interval is above it (strict: unless all of it is below)."""
    return decide(low <= threshold, high <= threshold, strict)
