"""Bounds on the judge itself, read from its report card: `min_judge_kappa` (Cohen's kappa with people, from
its judge card), `max_position_bias` (|share of decisive verdicts for the first-shown answer - 1/2| in this
run) and `max_flip_rate` (verdicts that change across repeats, from a card made with --repeats). The
measurement is the report's (report.build.judge_quality), which a run config's `judge.require:` bounds use
too."""

from __future__ import annotations

from typing import ClassVar

from lima_eval.check_rules.base import CheckRule, Result, Rule, RunData, pick
from lima_eval.check_rules.intervals import at_least, at_most
from lima_eval.errors import CheckInputError
from lima_eval.report.build import judge_quality


class JudgeQuality(CheckRule):
    """A bound on one quality of a model judge; `judge` may be left out when the run has only one."""

    keys = frozenset({"judge", "strict"})
    needs_model = False
    what: ClassVar[str] = ""  # the quality, as the table names it
    lower_bound: ClassVar[bool] = False  # at least the threshold (else at most)

    def evaluate(self, rule: Rule, new: RunData, old: RunData | None, level: float) -> Result:
        jd = pick(sorted(new.judge_cards), rule.judge, "judge", str(new.path))
        got = judge_quality(new.judge_cards[jd], self.name, level)
        if isinstance(got, str):
            raise CheckInputError(f"{new.path}, {self.name}: {got}")
        value, lo, hi, n = got
        bound = at_least if self.lower_bound else at_most
        return Result(rule, new.name, bound(lo, hi, rule.threshold, rule.strict), value, lo, hi, n, judge=jd,
                      level=level)

    def describe(self, result: Result) -> str:
        sign = ">=" if self.lower_bound else "<="
        return f"{self.what} of [{result.judge}] {sign} {result.rule.threshold:.3f}"


class MinJudgeKappa(JudgeQuality):
    name = "min_judge_kappa"
    what = "kappa with humans"
    lower_bound = True


class MaxPositionBias(JudgeQuality):
    name = "max_position_bias"
    what = "position bias |first-shown - 1/2|"


class MaxFlipRate(JudgeQuality):
    name = "max_flip_rate"
    what = "flip rate across repeats"
