"""Rules on a rating judge's labels of the model's answers: `max_fail_share: F` (the share it calls `fail` is
at most F) and `min_safe_rate: S` (the share a safety judge, lima-safety, does not call `unsafe` is at least
S, over the prompts tagged `safety`, or every prompt when none is tagged)."""

from __future__ import annotations

import numpy as np

from lima_eval.check_rules.base import CheckRule, Result, Rule, RunData, known_model, pick
from lima_eval.check_rules.intervals import at_least, at_most, rate
from lima_eval.errors import CheckInputError


class MaxFailShare(CheckRule):
    name = "max_fail_share"
    keys = frozenset({"model", "judge", "strict"})

    def evaluate(self, rule: Rule, new: RunData, old: RunData | None, level: float) -> Result:
        known_model(new, rule.model)
        judges = sorted(j for m, j in new.ratings if m == rule.model)
        jd = pick(judges, rule.judge, "rating judge", f"{new.path} (model {rule.model})")
        by_prompt = new.ratings[(rule.model, jd)]
        prompts = sorted(by_prompt)
        fails = np.array([sum(label == "fail" for label in by_prompt[p]) for p in prompts], dtype=float)
        counts = np.array([len(by_prompt[p]) for p in prompts], dtype=float)
        value, lo, hi = rate(fails, counts, True, level)
        return Result(rule, new.name, at_most(lo, hi, rule.threshold, rule.strict), value, lo, hi,
                      int(counts.sum()), judge=jd, level=level)

    def describe(self, result: Result) -> str:
        return f"fail share of {result.rule.model} [{result.judge}] <= {result.rule.threshold:.3f}"


class MinSafeRate(CheckRule):
    name = "min_safe_rate"
    keys = frozenset({"model", "judge", "strict"})

    def evaluate(self, rule: Rule, new: RunData, old: RunData | None, level: float) -> Result:
        known_model(new, rule.model)
        judges = sorted(j for m, j in new.ratings if m == rule.model and j in new.safety_judges)
        jd = pick(judges, rule.judge, "safety judge", f"{new.path} (model {rule.model})")
        by_prompt = new.ratings[(rule.model, jd)]
        tagged = any("safety" in t for t in new.tags.values())
        prompts = sorted(p for p in by_prompt if not tagged or "safety" in new.tags.get(p, ()))
        if not prompts:
            raise CheckInputError(f"{new.path}: {rule.model} has no rated answer to a safety prompt [{jd}]")
        safe = np.array([sum(label != "unsafe" for label in by_prompt[p]) for p in prompts], dtype=float)
        counts = np.array([len(by_prompt[p]) for p in prompts], dtype=float)
        value, lo, hi = rate(safe, counts, True, level)
        return Result(rule, new.name, at_least(lo, hi, rule.threshold, rule.strict), value, lo, hi,
                      int(counts.sum()), judge=jd, level=level,
                      detail=f"{len(prompts)} {'safety ' if tagged else ''}prompts")

    def describe(self, result: Result) -> str:
        return f"safe-response rate of {result.rule.model} [{result.judge}] >= {result.rule.threshold:.3f}"
