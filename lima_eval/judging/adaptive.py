"""Adaptive judging: spend calls where they change the answer (docs/adaptive.md).

- `order: both-if-close`: one order first (the seeded coin flip of `order: random`); the other order only where
  that verdict is a tie or, with logprobs, not confident (top option's probability minus the next one's below
  `close_below`). Pairs judged once count as that verdict; pairs judged twice combine as `order: both` does.
- `stop_when_decided`: each (model, baseline) pair's prompts are judged in a seeded random order, `step` prompts
  a round, and the pair stops once its win-rate interval lies wholly above or below the threshold.

The interval must stay valid although we look after every round and stop when it suits us, so a fixed-n
interval (normal or bootstrap) would not do: peeking inflates its error rate. We use a confidence sequence, an
interval that holds at every n at once with probability `confidence`. Each prompt's score x in [0, 1] (win 1, tie
1/2, loss 0) is 1/2-sub-Gaussian (Hoeffding), so S_n = sum(x_i - mu) has variance proxy V_n = n/4. Mixing the
exponential supermartingale exp(l S_n - l^2 V_n / 2) over l ~ Normal(0, 1/rho) gives a nonnegative
supermartingale, and Ville's inequality bounds the chance it ever exceeds 1/alpha. Solved for S_n, that is

    |mean_n - mu| <= sqrt((V_n + rho) * ln((V_n + rho) / (rho * alpha^2))) / n   for all n, w.p. >= 1 - alpha

(Robbins' normal mixture; Howard, Ramdas, McAuliffe & Sekhon 2021, "Time-uniform, nonparametric,
nonasymptotic confidence sequences"). rho only sets where the sequence is tightest; we tune it to the pair's
full prompt count, chosen before any verdict is seen, so the guarantee holds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from lima_eval.config import StopRule
from lima_eval.judging.counting import combine_orders
from lima_eval.records import Judgment, content_id

SCORE = {"a": 1.0, "tie": 0.5, "b": 0.0}  # model_a's share of one prompt (model_a is the model, b the baseline)


def radius(n: int, alpha: float, rho: float) -> float:
    """Half-width of the confidence sequence for a mean of n scores in [0, 1]."""
    if n <= 0:
        return math.inf
    v = n / 4
    return math.sqrt((v + rho) * math.log((v + rho) / (rho * alpha * alpha))) / n


def tuned_rho(n_target: int, alpha: float) -> float:
    """The rho that makes the sequence tightest at n_target prompts (a golden-section search on log rho)."""
    lo, hi = math.log(1e-4), math.log(max(1.0, n_target) * 10)
    g = (math.sqrt(5) - 1) / 2
    for _ in range(80):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if radius(n_target, alpha, math.exp(a)) < radius(n_target, alpha, math.exp(b)):
            hi = b
        else:
            lo = a
    return math.exp((lo + hi) / 2)


def interval(scores: list[float], confidence: float, n_target: int) -> tuple[float, float, float]:
    """(mean, low, high) of the always-valid interval at the current n (clipped to [0, 1])."""
    if not scores:
        return math.nan, 0.0, 1.0
    alpha = 1 - confidence
    mean = sum(scores) / len(scores)
    r = radius(len(scores), alpha, tuned_rho(n_target, alpha))
    return mean, max(0.0, mean - r), min(1.0, mean + r)


def decided(low: float, high: float, threshold: float) -> str | None:
    """'above' or 'below' once the interval clears the threshold, else None."""
    return "above" if low > threshold else "below" if high < threshold else None


def judge_pair(scores: list[float], rule: StopRule, n_prompts: int) -> tuple[float, float, float, str | None]:
    """(mean, low, high, decision) of one pair's scores under a StopRule: the decision ('above' / 'below') once
    at least min_prompts prompts have a verdict and the interval clears the threshold, else None. The one rule
    the judge stage stops by, the report shows and perf/adaptive_sim.py replays."""
    mean, low, high = interval(scores, rule.confidence, n_prompts)
    decision = decided(low, high, rule.threshold) if len(scores) >= rule.min_prompts else None
    return mean, low, high, decision


def prompt_order(seed: int, prompt_ids: Iterable[str]) -> list[str]:
    """The seeded random order in which a pair's prompts are judged (the same on every rerun)."""
    return sorted(set(prompt_ids), key=lambda pid: content_id("adaptive-order", seed, pid))


def is_close(j: Judgment | None, close_below: float) -> bool:
    """Whether a first-order verdict asks for the other order: a tie, or a probability margin below close_below.
    A failed call or an unreadable reply is not close: it stays the recorded error it is."""
    if j is None or j.verdict is None:
        return False
    if j.verdict == "tie":
        return True
    if j.probs:
        top = sorted(j.probs.values(), reverse=True) + [0.0]
        return top[0] - top[1] < close_below
    return False


def prompt_scores(judgments: Iterable[Judgment], rule: str) -> dict[str, float]:
    """prompt id -> model_a's score from one pair's records (orders combined per `rule`; errors left out)."""
    out: dict[str, list[float]] = {}
    for j in combine_orders(list(judgments), rule):
        if j.verdict is not None:
            out.setdefault(j.prompt_id, []).append(SCORE[j.verdict])
    return {pid: sum(v) / len(v) for pid, v in out.items()}


def stop_rows(spec: Any, label: str, judgments: list[Judgment], n_prompts: int) -> list[dict[str, Any]]:
    """Per (model, baseline) pair of a judge with stop_when_decided: prompts judged, the always-valid interval,
    and the decision, from the records on disk (the report's `adaptive` section)."""
    rule = spec.stop_when_decided
    pairs: dict[tuple[str, str], list[Judgment]] = {}
    for j in judgments:
        pairs.setdefault((j.model_a, j.model_b), []).append(j)
    rows = []
    for (model, baseline), records in sorted(pairs.items()):
        scores = list(prompt_scores(records, spec.order_rule).values())
        mean, low, high, decision = judge_pair(scores, rule, n_prompts)
        rows.append({"judge": label, "model": model, "baseline": baseline, "prompts_judged": len(scores),
                     "prompts": n_prompts, "win_rate": None if not scores else round(mean, 4),
                     "low": round(low, 4), "high": round(high, 4), "confidence": rule.confidence,
                     "threshold": rule.threshold, "decision": decision})
    return rows


def stop_note(row: dict[str, Any]) -> str:
    head = (f"`{row['judge']}` judged {row['model']} vs {row['baseline']} adaptively (stop_when_decided): "
            f"{row['prompts_judged']} of {row['prompts']} prompts, always-valid {row['confidence']:.0%} interval of "
            f"the win rate [{row['low']:.1%}, {row['high']:.1%}]")
    if row["decision"]:
        return (f"{head}, {row['decision']} {row['threshold']:.0%}. The other intervals in this report assume a "
                "fixed number of prompts; decide on this one.")
    return f"{head}: not decided (the interval still holds {row['threshold']:.0%})."
