"""`max_drop: D`: against an older run, the model's win rate (or another check metric) drops by no more than
D, paired over the prompts both runs share. Without a rules file, `lima-eval check --against` gates every row
both runs have with this rule."""

from __future__ import annotations

from lima_eval.check_rules.base import Result, Rule, RunData
from lima_eval.check_rules.intervals import at_least, columns, paired_difference
from lima_eval.check_rules.win_rate import PairwiseRule
from lima_eval.errors import CheckInputError


class MaxDrop(PairwiseRule):
    name = "max_drop"
    keys = PairwiseRule.keys | {"old_model"}

    def evaluate(self, rule: Rule, new: RunData, old: RunData | None, level: float) -> Result:
        self.check_metric(rule)
        base, jd, by_new = self.row(new, rule.model, rule.baseline, rule.judge)
        if old is None:
            raise CheckInputError(f"rule max_drop for {rule.model} needs an older run (--against OLD_RUN)")
        _, _, by_old = self.row(old, rule.old_model or rule.model, base, jd)
        shared = sorted(set(by_new) & set(by_old))
        if not shared:
            raise CheckInputError(f"{new.path} and {old.path} share no prompts for {rule.model} vs {base} "
                                  f"[{jd}]; a paired comparison needs the same prompts in both runs")
        cols_new, cols_old = columns(by_new, shared, rule.metric), columns(by_old, shared, rule.metric)
        diff, lo, hi = paired_difference(cols_new, cols_old, level)
        detail = (f"new {cols_new[0].sum() / cols_new[1].sum():.4f} vs old "
                  f"{cols_old[0].sum() / cols_old[1].sum():.4f} on {len(shared)} shared prompts (paired)")
        passed = at_least(lo, hi, -rule.threshold, rule.strict)
        return Result(rule, new.name, passed, diff, lo, hi, len(shared), base, jd, detail, level)

    def describe(self, result: Result) -> str:
        r = result.rule
        old = f" ({r.old_model} in the old run)" if r.old_model and r.old_model != r.model else ""
        who = f"{r.metric} of {r.model} vs {result.baseline} [{result.judge}]"
        return f"drop in {who}{old} <= {r.threshold:.3f}"

    def show(self, value: float) -> str:
        return f"{value:+.4f}"  # a difference: its sign says which way

    @classmethod
    def defaults(cls, new: RunData, old: RunData, max_drop: float) -> list[Rule]:
        """No drop beyond max_drop for every (model, baseline, judge) both runs have."""
        rows = [k for k in new.rows if k in old.pairs]
        if not rows:
            raise CheckInputError(f"{new.path} and {old.path} have no (model, baseline, judge) in common")
        return [Rule(kind=cls.name, threshold=max_drop, model=m, baseline=b, judge=j) for m, b, j in rows]
