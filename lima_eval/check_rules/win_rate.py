"""`min_win_rate: X`: the model's win rate (or another of the report's check metrics) against a baseline under
a judge is at least X. PairwiseRule is what it shares with max_drop: the run's row it reads and its metric."""

from __future__ import annotations

from typing import Any

from lima_eval.check_rules.base import CheckRule, Result, Rule, RunData, known_model, pick
from lima_eval.check_rules.intervals import at_least, columns, rate
from lima_eval.errors import CheckInputError
from lima_eval.report.columns import check_metrics

METRICS = check_metrics()  # the report's columns flagged as check metrics


class PairwiseRule(CheckRule):
    """A rule on one row of the report's pairwise table: a model against a baseline under a judge."""

    keys = frozenset({"model", "baseline", "judge", "metric", "strict"})

    def parse(self, raw: dict[str, Any], where: str) -> Rule:
        rule = super().parse(raw, where)
        if rule.metric not in METRICS:
            raise CheckInputError(f"{where}, metric: '{raw['metric']}' is not one of {', '.join(METRICS)}")
        return rule

    @staticmethod
    def check_metric(rule: Rule) -> None:
        if rule.metric not in METRICS:
            raise CheckInputError(f"metric '{rule.metric}' is not one of {', '.join(METRICS)}")

    @staticmethod
    def row(run: RunData, model: str, baseline: str | None, judge: str | None
            ) -> tuple[str, str, dict[str, list[tuple[float, int]]]]:
        """(baseline, judge, the model's labels by prompt) of the run's row; baseline and judge may be left
        out where the run has only one."""
        known_model(run, model)
        bases = sorted({b for m, b, _ in run.pairs if m == model})
        base = pick(bases, baseline, "baseline", f"{run.path} (model {model})")
        judges = sorted({j for m, b, j in run.pairs if m == model and b == base})
        jd = pick(judges, judge, "judge", f"{run.path} ({model} vs {base})")
        return base, jd, run.pairs[(model, base, jd)]


class MinWinRate(PairwiseRule):
    name = "min_win_rate"

    def evaluate(self, rule: Rule, new: RunData, old: RunData | None, level: float) -> Result:
        self.check_metric(rule)
        base, jd, by_prompt = self.row(new, rule.model, rule.baseline, rule.judge)
        s, c, binary = columns(by_prompt, sorted(by_prompt), rule.metric)
        value, lo, hi = rate(s, c, binary, level)
        passed = at_least(lo, hi, rule.threshold, rule.strict)
        return Result(rule, new.name, passed, value, lo, hi, int(c.sum()), base, jd, level=level)

    def describe(self, result: Result) -> str:
        r = result.rule
        return f"{r.metric} of {r.model} vs {result.baseline} [{result.judge}] >= {r.threshold:.3f}"
