"""Kinds of `lima-eval check` rules. Each is a CheckRule subclass, registered in CHECK_RULES under its key in
a rules file; it owns the keys its entry takes, how the entry is parsed, how it is decided on a run (and the
old run where it compares two) and how its result is described. A plugin adds a rule the same way: a subclass
and an entry point in the `lima_eval.check_rules` group (docs/extending.md)."""

from lima_eval.check_rules.base import CheckRule, Result, Rule, RunData, known_model, pick, rule_kind
from lima_eval.registry import CHECK_RULES

__all__ = ["CheckRule", "Result", "Rule", "RunData", "known_model", "pick", "rule_kind"]

# The built-ins, registered as a plugin's rules are. These lines stand for entry points in pyproject.toml
# ([project.entry-points."lima_eval.check_rules"], one line each); they go when those are there.
CHECK_RULES.register("min_win_rate", "lima_eval.check_rules.win_rate:MinWinRate")
CHECK_RULES.register("max_drop", "lima_eval.check_rules.regression:MaxDrop")
CHECK_RULES.register("max_fail_share", "lima_eval.check_rules.safety:MaxFailShare")
CHECK_RULES.register("min_safe_rate", "lima_eval.check_rules.safety:MinSafeRate")
CHECK_RULES.register("max_contamination", "lima_eval.check_rules.contamination:MaxContamination")
CHECK_RULES.register("min_judge_kappa", "lima_eval.check_rules.judge_quality:MinJudgeKappa")
CHECK_RULES.register("max_position_bias", "lima_eval.check_rules.judge_quality:MaxPositionBias")
CHECK_RULES.register("max_flip_rate", "lima_eval.check_rules.judge_quality:MaxFlipRate")
