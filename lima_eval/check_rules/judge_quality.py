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
    from_card: ClassVar[bool] = True  # read from the judge's card (lima-eval judge-card), not from this run

    def evaluate(self, rule: Rule, new: RunData, old: RunData | None, level: float) -> Result:
        if not new.judge_cards or rule.judge in new.unordered_judges:
            raise CheckInputError(f"{new.path}, {self.name}: {self.missing(new, rule.judge)}")
        jd = pick(sorted(new.judge_cards), rule.judge, "judge", str(new.path))
        got = judge_quality(new.judge_cards[jd], self.name, level)
        if isinstance(got, str):
            raise CheckInputError(f"{new.path}, {self.name}: {got}")
        value, lo, hi, n = got
        bound = at_least if self.lower_bound else at_most
        return Result(rule, new.name, bound(lo, hi, rule.threshold, rule.strict), value, lo, hi, n, judge=jd,
                      level=level)

    def missing(self, run: RunData, judge: str | None) -> str:
        """Why the run has nothing to measure: no model judge, and imported judgments (if any) that carry no
        order information and no judge card."""
        imported = [judge] if judge in run.unordered_judges else sorted(run.unordered_judges)
        if self.from_card:
            why = f"; the judgments of {', '.join(imported)} are imported, from a judge lima-eval did not run"
            return ("no judge card to read: this run has no model judge (lima-eval judge-card makes cards for "
                    f"judges lima-eval runs){why if imported else ''}")
        why = (f"; the judgments of {', '.join(imported)} are imported and carry no order information (their "
               f"file does not say which answer was shown first)")
        return f"no model judge with order data in this run{why if imported else ''}"

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
    from_card = False


class MaxFlipRate(JudgeQuality):
    name = "max_flip_rate"
    what = "flip rate across repeats"

