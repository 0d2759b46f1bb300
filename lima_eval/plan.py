"""Sample-size planning (`lima-eval plan`): how many prompts a comparison needs, and how well a pilot run's models
separate (docs/plan.md).

Two questions, each answered with the normal approximation n = ((z_{1-alpha/2} + z_power) * sd / effect)^2:
- **model vs baseline**: detect a win rate of 1/2 + effect. sd is the spread of a prompt's score (its share of
  the win, ties half). Without a pilot run it is 0.5: decisive verdicts that split evenly, the largest spread
  there is.
- **two models against one baseline, paired over the same prompts** (checkpoint vs checkpoint): detect a
  difference of `effect` between their win rates. sd is the spread of the per-prompt difference of their
  scores. Without a pilot it is 0.5, which is two scores of spread 0.5 with correlation 1/2.
A pilot run supplies both spreads (each row's the larger of its scores' and its verdicts', so a judge's soft scores
that sit near 1/2 do not plan a handful of prompts): the largest single-row spread, and the largest paired spread
among its rows that share a judge and a baseline, so the plan holds for every model in it. A sample's spread can
exceed what the scores allow (a score in [0, 1] spreads at most 0.5, a difference of two at most 1; with few prompts
the sample sd of an even split is 0.5 * sqrt(n / (n - 1))): it is capped there, so a pilot never asks for more
prompts than the most spread there can be (785 for five points, model vs baseline). Where the pilot cannot give a
spread (no two models share a judge and a baseline, for the paired one), the plan uses the default and says so.
Separability (as Arena-Hard reports it) is the share of the pilot's model pairs, under one judge and baseline, whose
95% win-rate intervals do not overlap; the plan says why when there is none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from lima_eval.check import load_run
from lima_eval.check_rules.intervals import rate
from lima_eval.errors import CheckInputError, ConfigError
from lima_eval.inputs import shown

DEFAULT_SD = 0.5
MAX_SD_SINGLE = 0.5  # a score in [0, 1] (Popoviciu: variance <= 1/4)
MAX_SD_PAIRED = 1.0  # a difference of two such scores, in [-1, 1]


def prompts_needed(effect: float, sd: float, power: float = 0.8, level: float = 0.95) -> int:
    """Prompts for a two-sided test at `level` to find a shift of `effect` with probability `power`."""
    z = NormalDist().inv_cdf(1 - (1 - level) / 2) + NormalDist().inv_cdf(power)
    return max(2, math.ceil((z * sd / effect) ** 2))


@dataclass
class Plan:
    effect: float
    power: float
    level: float
    sd_single: float
    sd_paired: float
    source: str  # "default" or the pilot run
    single: int = 0
    paired: int = 0
    separability: dict[str, Any] = field(default_factory=dict)
    # Why a figure is not simply the pilot's: "single" / "paired" (the default used, or the spread capped) and
    # "separability" (why there is none).
    notes: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def make_plan(effect: float, power: float = 0.8, level: float = 0.95, pilot: Path | None = None) -> Plan:
    if not 0 < effect < 0.5:
        raise ConfigError(f"--effect: {shown(effect)} is out of range (a win-rate difference above 0 and below 0.5)")
    if not 0 < power < 1:
        raise ConfigError(f"--power: {shown(power)} is out of range (above 0 and below 1)")
    if not 0 < level < 1:
        raise ConfigError(f"--level: {shown(level)} is out of range (above 0 and below 1)")
    sd_single = sd_paired = DEFAULT_SD
    sep: dict[str, Any] = {}
    notes: dict[str, str] = {}
    source = "default"
    if pilot is not None:
        sd_single, sd_paired, sep, notes = _from_pilot(Path(pilot), level)
        source = str(pilot)
    return Plan(effect, power, level, sd_single, sd_paired, source,
                single=prompts_needed(effect, sd_single, power, level),
                paired=prompts_needed(effect, sd_paired, power, level), separability=sep, notes=notes)


def _spread(found: list[float], cap: float, what: str, missing: str, notes: dict[str, str], key: str) -> float:
    """The largest of the pilot's spreads, capped at the most the scores allow; the default where it has none.
    `notes[key]` says which, when it is not the pilot's own figure."""
    if not found:
        notes[key] = f"the default, as {missing}"
        return DEFAULT_SD
    sd = max(found)
    if sd > cap:
        notes[key] = (f"capped: the most {what} can spread; the pilot's sample sd {sd:.3f} is above it by the "
                      f"noise of a small sample")
        return cap
    return sd


def _from_pilot(path: Path, level: float) -> tuple[float, float, dict[str, Any], dict[str, str]]:
    """(largest per-row score sd, largest paired-difference sd, separability, notes) of a pilot run."""
    try:
        run = load_run(path)
    except CheckInputError as exc:
        raise ConfigError(f"--pilot: {exc}") from None
    rows: dict[tuple[str, str, str], dict[str, float]] = {}
    verdicts: dict[tuple[str, str, str], dict[str, float]] = {}  # the same, scored on the verdicts alone
    for (model, base, judge), by_prompt in run.pairs.items():
        if (model, base, judge) in {(m, b, j) for m, b, j in run.rows}:
            rows[(model, base, judge)] = {p: float(np.mean([s for s, _ in v])) for p, v in by_prompt.items()}
            verdicts[(model, base, judge)] = {p: float(np.mean([(1 + side) / 2 for _, side in v]))
                                              for p, v in by_prompt.items()}
    if not rows:
        raise ConfigError(f"--pilot: {path} has no pairwise verdicts to learn the spread from")
    notes: dict[str, str] = {}
    # A judge's soft scores (logprobs) can sit near 1/2 on every prompt while its verdicts split: planning on that
    # spread would ask for a handful of prompts from a judge that cannot tell the answers apart. Each row's spread
    # is the larger of its scores' and its verdicts' (win 1, tie 1/2, loss 0).
    singles = []
    for key, v in rows.items():
        if len(v) > 1:
            soft, hard = float(np.std(list(v.values()), ddof=1)), float(np.std(list(verdicts[key].values()), ddof=1))
            singles.append(max(soft, hard))
            if hard > soft:
                notes["soft"] = ("the judge's soft scores spread less than its verdicts (win 1, tie 1/2, loss 0): "
                                 "planned on the verdicts' spread")
    paired, intervals, sep = [], {}, {}
    by_group: dict[tuple[str, str], list[str]] = {}
    for (model, base, judge), v in rows.items():
        by_group.setdefault((base, judge), []).append(model)
        scores = np.array(list(v.values()))
        _, lo, hi = rate(scores, np.ones_like(scores), False, level)
        intervals[(model, base, judge)] = (lo, hi)
    for (base, judge), models in by_group.items():
        pairs = list(combinations(models, 2))
        apart = 0
        for a, b in pairs:
            va, vb = rows[(a, base, judge)], rows[(b, base, judge)]
            shared = sorted(set(va) & set(vb))
            if len(shared) > 1:
                da, db = verdicts[(a, base, judge)], verdicts[(b, base, judge)]
                paired.append(max(float(np.std([va[p] - vb[p] for p in shared], ddof=1)),
                                  float(np.std([da[p] - db[p] for p in shared], ddof=1))))
            (la, ha), (lb, hb) = intervals[(a, base, judge)], intervals[(b, base, judge)]
            apart += ha < lb or hb < la
        if pairs:
            sep[f"{judge} vs {base}"] = {"models": len(models), "pairs": len(pairs), "separable": apart,
                                         "share": round(apart / len(pairs), 4)}
    lone = "no two models in the pilot are judged against one baseline by one judge"
    sd_single = _spread(singles, MAX_SD_SINGLE, "a score in [0, 1]",
                        "no row of the pilot has verdicts on two prompts or more", notes, "single")
    sd_paired = _spread(paired, MAX_SD_PAIRED, "a difference of two scores in [0, 1]",
                        f"{lone} on two shared prompts or more" if sep else lone, notes, "paired")
    if not sep:
        notes["separability"] = f"n/a, as {lone}"
    return sd_single, sd_paired, sep, notes


def describe(plan: Plan) -> list[str]:
    def why(key: str) -> str:
        return f", {plan.notes[key]}" if key in plan.notes else ""

    lines = [(f"to detect a win-rate difference of {plan.effect:g} with power {plan.power:g} at the {plan.level:.0%} "
             f"level (spread from {plan.source}):"),
             (f"  model vs baseline (win rate {0.5 + plan.effect:g} vs 1/2): {plan.single} prompts (score sd "
             f"{plan.sd_single:.3f}{why('single')})"),
             (f"  two models vs one baseline, paired: {plan.paired} prompts (paired-difference sd "
              f"{plan.sd_paired:.3f}{why('paired')})")]
    for group, s in plan.separability.items():
        lines.append(f"  separability [{group}]: {s['separable']} of {s['pairs']} model pairs have non-overlapping "
                     f"intervals ({s['share']:.0%})")
    if "soft" in plan.notes:
        lines.append(f"  note: {plan.notes['soft']}")
    if "separability" in plan.notes:
        lines.append(f"  separability: {plan.notes['separability']}")
    return lines
