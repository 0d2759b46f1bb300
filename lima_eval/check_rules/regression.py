"""`max_drop: D`: against an older run, the model's win rate (or another check metric) drops by no more than
D, paired over the prompts both runs share. Without a rules file, `lima-eval check --against` gates every row
both runs have with this rule."""

from __future__ import annotations

from lima_eval.check_rules.base import Result, Rule, RunData
from lima_eval.check_rules.intervals import at_least, columns, paired_difference
from lima_eval.check_rules.win_rate import PairwiseRule
from lima_eval.errors import CheckInputError


def changed(diff: float) -> str:
    """A change of a rate in words: 'dropped 0.0801', 'rose 0.0200', 'unchanged' (at the shown precision)."""
    if round(diff, 4) == 0:
        return "unchanged"
    return f"{'dropped' if diff < 0 else 'rose'} {abs(diff):.4f}"


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
        """The change new - old in words, its size positive: a signed number next to `<= 0.050` read as
        passing when it was a drop of more than that."""
        return changed(value)

    def show_interval(self, low: float, high: float) -> str:
        """The interval of the change in words: 'dropped 0.0120 to 0.0801', 'rose ... to ...', or 'dropped 0.0500
        to rose 0.0300' when it holds both."""
        if high <= 0:
            return f"dropped {-high:.4f} to {-low:.4f}"
        if low >= 0:
            return f"rose {low:.4f} to {high:.4f}"
        return f"dropped {-low:.4f} to rose {high:.4f}"

    @classmethod
    def defaults(cls, new: RunData, old: RunData, max_drop: float) -> list[Rule]:
        """No drop beyond max_drop for every (model, baseline, judge) both runs have."""
        rows = [k for k in new.rows if k in old.pairs]
        if not rows:
            raise CheckInputError(f"{new.path} and {old.path} have no (model, baseline, judge) in common")
        return [Rule(kind=cls.name, threshold=max_drop, model=m, baseline=b, judge=j) for m, b, j in rows]
