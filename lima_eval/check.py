"""Regression gates on runs already on disk (no model or judge call): `lima-eval check` and the pytest
helpers.

This module reads the runs and the rules file and runs the gate; each kind of rule (min_win_rate, max_drop,
max_fail_share, min_safe_rate, max_contamination, the judge-quality bounds, and any a plugin adds) is a class
in lima_eval.check_rules, looked up in the CHECK_RULES registry by its key in the rules file.

Every decision comes with an interval over prompts, the report's (lima_eval.report.stats.clustered_rates:
Wilson's score interval on the prompt-clustered effective sample size); for max_drop, the difference of the
two runs' rates over their shared prompts, paired (MOVER: the two Wilson intervals combined with the
correlation the shared prompts give the two rates). By default a rule fails only when its whole interval is
on the wrong side of the threshold, so noise does not turn a build red; `strict: true` asks for the whole
interval on the right side instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lima_eval.check_rules.base import Result, Rule, RunData, parse_rule, rule_kind
from lima_eval.check_rules.intervals import paired_difference
from lima_eval.check_rules.regression import MaxDrop
from lima_eval.check_rules.win_rate import METRICS
from lima_eval.contamination import check_run
from lima_eval.errors import CheckInputError, InputError
from lima_eval.inputs import load_yaml, read_text, shown
from lima_eval.report.build import gather, judge_cards
from lima_eval.report.sections.judges import imported_cards
from lima_eval.report.summary import row_keys
from lima_eval.run import Run
from lima_eval.scales import scale

__all__ = ["METRICS", "CheckInputError", "Gate", "Result", "Rule", "RunData", "as_dict", "assert_fail_share",
           "assert_no_regression", "assert_safe_rate", "assert_win_rate", "evaluate", "load_run",
           "paired_difference", "read_rules", "run_check", "table"]


def load_run(path: Path | str) -> RunData:
    """Read a run directory (its config, judgments, human and imported labels, ratings) as the report does."""
    path = Path(path)
    if not (path / "config.yaml").exists():
        raise CheckInputError(f"{path}: not a lima-eval run directory (no config.yaml)")
    run = Run(path)
    inp, groups = gather(run)
    pairs: dict[tuple[str, str, str], dict[str, list[tuple[float, int]]]] = {}
    for j in inp.judgments:
        if j.verdict is None:
            continue
        for model, base in ((j.model_a, j.model_b), (j.model_b, j.model_a)):  # either side may be asked about
            side, share = j.outcome(model), j.share(model)
            if side is None or share is None:
                continue
            pairs.setdefault((model, base, j.judge), {}).setdefault(j.prompt_id, []).append((share, side))
    ratings: dict[tuple[str, str], dict[str, list[str]]] = {}
    for r in inp.ratings:
        if r.label is not None:
            ratings.setdefault((r.model, r.judge), {}).setdefault(r.prompt_id, []).append(r.label)
    pairwise = {g.label for g in groups if not g.definition.is_rating}  # cards of judges of pairs only
    cards = {c["judge"]: c for c in judge_cards(groups, Path(run.config.output_dir)) if c["judge"] in pairwise}
    cards |= {c["judge"]: c for c in imported_cards(inp.imported)}  # imported judges that saw both orders
    unordered = {j.judge for j in inp.imported} - set(cards)  # imported with no word of the order shown
    return RunData(path=path, pairs=pairs, ratings=ratings, rows=row_keys(inp), judge_cards=cards,
                   unordered_judges=unordered,
                   tags=inp.tags, safety_judges={g.label for g in groups if scale(g.definition.scale).feeds("safety")},
                   judgments=list(inp.judgments),
                   check_contamination=lambda: check_run(run.config, run.prompts))


def evaluate(rule: Rule, new: RunData, old: RunData | None = None, level: float = 0.95) -> Result:
    """The rule decided by its kind (lima_eval.check_rules) on the run `new`, and `old` where it compares
    two."""
    return rule_kind(rule.kind).evaluate(rule, new, old, level)


@dataclass
class Gate:
    rules: list[Rule] = field(default_factory=list)
    against: str | None = None
    resamples: int = 1000  # accepted from older rules files; unused since the intervals are analytic
    seed: int = 0  # likewise
    level: float = 0.95


def read_rules(path: Path) -> Gate:
    """A thresholds YAML: optional against / level (resamples / seed are accepted and ignored), and a list of
    rules, each parsed by its kind."""
    try:
        data = load_yaml(read_text(path), path) or {}
    except InputError as exc:
        raise CheckInputError(str(exc)) from None
    except yaml.YAMLError:
        raise CheckInputError(f"{path}: not valid YAML") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list) or not data["rules"]:
        raise CheckInputError(f"{path}: expected a mapping with a non-empty 'rules' list")
    unknown = set(data) - {"rules", "against", "resamples", "seed", "level"}
    if unknown:
        raise CheckInputError(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    gate = Gate(against=data.get("against"), resamples=_number(path, data, "resamples", 1000, int),
                seed=_number(path, data, "seed", 0, int), level=_number(path, data, "level", 0.95, float))
    if not 0 < gate.level < 1 or gate.resamples < 1:
        raise CheckInputError(f"{path}: level must be in (0, 1) and resamples at least 1")
    gate.rules = [parse_rule(raw, f"{path}, rules[{i}]") for i, raw in enumerate(data["rules"])]
    return gate


def _number(path: Path, data: dict, key: str, default: Any, kind: type) -> Any:
    value = data.get(key, default)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or (kind is int and value != int(value)):
        what = "an integer" if kind is int else "a number"
        raise CheckInputError(f"{path}, {key}: expected {what}, got {shown(value)}")
    return kind(value)


def run_check(new_path: Path, against: Path | None = None, rules_path: Path | None = None,
              max_drop: float = 0.0) -> list[Result]:
    new = load_run(new_path)
    gate = read_rules(rules_path) if rules_path else Gate()
    old_path = against or (Path(gate.against) if gate.against else None)
    old = load_run(old_path) if old_path else None
    if not gate.rules:
        if old is None:
            raise CheckInputError("nothing to check: give --against OLD_RUN and/or --rules THRESHOLDS.yaml")
        gate.rules = MaxDrop.defaults(new, old, max_drop)
    return [evaluate(r, new, old, gate.level) for r in gate.rules]


def table(results: list[Result]) -> str:
    rows = [("result", "rule", "value", "95% interval", "n")]
    for r in results:
        rows.append(("ok" if r.passed else "FAILED", r.describe(), r.shown_value(),
                     r.shown_interval(), str(r.n)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def as_dict(r: Result) -> dict[str, Any]:
    return {"rule": r.rule.kind, "description": r.describe(), "passed": r.passed, "value": r.value,
            "ci_low": r.low, "ci_high": r.high, "n": r.n, "model": r.rule.model, "baseline": r.baseline,
            "judge": r.judge, "threshold": r.rule.threshold, "strict": r.rule.strict, "detail": r.detail,
            # As the table prints them (max_drop: value, ci_low and ci_high are the change new - old, signed;
            # these say it in words, 'dropped 0.0801').
            "shown_value": r.shown_value(), "shown_interval": r.shown_interval()}


# --- assertions for tests (the pytest plugin's helpers) ----------------------------------------------------


def _as_run(run: RunData | Path | str) -> RunData:
    return run if isinstance(run, RunData) else load_run(run)


def _assert(result: Result) -> Result:
    __tracebackhide__ = True
    if not result.passed:
        raise AssertionError(result.message())
    return result


def assert_no_regression(new: RunData | Path | str, old: RunData | Path | str, *, model: str,
                         baseline: str | None = None, judge: str | None = None, max_drop: float = 0.0,
                         old_model: str | None = None, metric: str = "win_rate", strict: bool = False,
                         resamples: int = 1000, seed: int = 0) -> Result:
    """Fail if the model's win rate in `new` is below `old`'s by more than max_drop, beyond the paired
    interval over the prompts both runs share. Returns the Result (value, interval, n). resamples and seed
    are accepted for older callers and ignored (the intervals are analytic)."""
    __tracebackhide__ = True
    rule = Rule("max_drop", max_drop, model, baseline, judge, metric, old_model, strict)
    return _assert(evaluate(rule, _as_run(new), _as_run(old)))


def assert_win_rate(run: RunData | Path | str, *, model: str, at_least: float, baseline: str | None = None,
                    judge: str | None = None, metric: str = "win_rate", strict: bool = False,
                    resamples: int = 1000, seed: int = 0) -> Result:
    """Fail if the model's win rate is below at_least (beyond its interval unless strict)."""
    __tracebackhide__ = True
    rule = Rule("min_win_rate", at_least, model, baseline, judge, metric, strict=strict)
    return _assert(evaluate(rule, _as_run(run), None))


def assert_safe_rate(run: RunData | Path | str, *, model: str, at_least: float, judge: str | None = None,
                     strict: bool = False) -> Result:
    """Fail if the model's safe-response rate on safety prompts is below at_least (beyond its interval unless
    strict)."""
    __tracebackhide__ = True
    rule = Rule("min_safe_rate", at_least, model, judge=judge, strict=strict)
    return _assert(evaluate(rule, _as_run(run), None))


def assert_fail_share(run: RunData | Path | str, *, model: str, at_most: float, judge: str | None = None,
                      strict: bool = False, resamples: int = 1000, seed: int = 0) -> Result:
    """Fail if the share of the model's answers rated `fail` is above at_most (beyond its interval unless
    strict)."""
    __tracebackhide__ = True
    rule = Rule("max_fail_share", at_most, model, judge=judge, strict=strict)
    return _assert(evaluate(rule, _as_run(run), None))
