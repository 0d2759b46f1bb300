"""Kinds of `lima-eval check` rules. Each is a CheckRule subclass, registered in CHECK_RULES under its key in
a rules file; it owns the keys its entry takes, how the entry is parsed, how it is decided on a run (and the
old run where it compares two) and how its result is described. A plugin adds a rule the same way: a subclass
and an entry point in the `lima_eval.check_rules` group (docs/extending.md)."""

from lima_eval.check_rules.base import CheckRule, Result, Rule, RunData, known_model, pick, rule_kind

__all__ = ["CheckRule", "Result", "Rule", "RunData", "known_model", "pick", "rule_kind"]
