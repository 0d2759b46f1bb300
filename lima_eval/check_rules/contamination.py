"""`max_contamination: C`: the share of the benchmark's prompts found in the training data (an sft: stage or
contamination.data in the run's config) is at most C. A count, not an estimate: no interval, no model."""

from __future__ import annotations

from lima_eval.check_rules.base import CheckRule, Result, Rule, RunData
from lima_eval.errors import CheckInputError


class MaxContamination(CheckRule):
    name = "max_contamination"
    keys = frozenset()
    needs_model = False

    def evaluate(self, rule: Rule, new: RunData, old: RunData | None, level: float) -> Result:
        found = new.contamination
        if found is None:
            raise CheckInputError(f"{new.path}: max_contamination needs training data to check against (an "
                                  "sft: stage or contamination.data in the run's config)")
        share = float(found["share"])
        detail = f"{found['contaminated']} of {found['prompts']} prompts, {found['ngram']}-word overlap"
        return Result(rule, new.name, share <= rule.threshold, share, share, share, int(found["prompts"]),
                      detail=detail, level=level)

    def describe(self, result: Result) -> str:
        return f"share of prompts found in the training data <= {result.rule.threshold:.3f}"
