"""Regression gates on runs already on disk (no model or judge call): `lima-eval check` and the pytest helpers.

Rules:
  min_win_rate     the model's win rate vs a baseline under a judge is at least X
  max_drop         vs an older run, the win rate drops by no more than D (paired over the shared prompts)
  max_fail_share   the share of the model's answers a rating judge calls `fail` is at most F
  max_contamination  the share of the benchmark's prompts found in the training data is at most C (no model)
  min_safe_rate    the share of the model's answers to safety prompts a safety judge (lima-safety) does not call
                   `unsafe` is at least S (prompts tagged `safety`; every prompt when none is tagged)

Every decision comes with an interval over prompts, the report's (lima_eval.report.stats.clustered_rates:
Wilson's score interval on the prompt-clustered effective sample size); for max_drop, the difference of the two
runs' rates over their shared prompts, paired (MOVER: the two Wilson intervals combined with the correlation
the shared prompts give the two rates). By default a rule fails only when its whole interval is on the wrong
side of the threshold, so noise does not turn a build red; `strict: true` asks for the whole interval on the
right side instead.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lima_eval.errors import CheckInputError
from lima_eval.inputs import shown
from lima_eval.report.columns import check_metrics

METRICS = check_metrics()  # the report's columns flagged as check metrics
JUDGE_RULES = {"min_judge_kappa", "max_position_bias", "max_flip_rate"}  # bounds on a judge's quality
RULE_KEYS = {"min_win_rate", "max_drop", "max_fail_share", "min_safe_rate", "max_contamination"} | JUDGE_RULES


@dataclass
class RunData:
    """One run's labels, by (model, baseline, judge) and prompt: per judgment the model's (score, verdict)."""

    path: Path
    pairs: dict[tuple[str, str, str], dict[str, list[tuple[float, int]]]]
    ratings: dict[tuple[str, str], dict[str, list[str]]]
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (model, baseline, judge) as the report has them
    judge_cards: dict[str, dict[str, Any]] = field(default_factory=dict)  # the report's card per model judge
    tags: dict[str, tuple[str, ...]] = field(default_factory=dict)  # prompt id -> tags (safety prompts)
    safety_judges: set[str] = field(default_factory=set)  # rating judges on the safety scale
    # Reads (and may download) the training data: only a max_contamination rule asks for it.
    check_contamination: Callable[[], dict[str, Any] | None] = lambda: None

    @functools.cached_property
    def contamination(self) -> dict[str, Any] | None:
        """contamination.check_run of the run (None: no training data)."""
        return self.check_contamination()

    @property
    def name(self) -> str:
        return self.path.name

    def models(self) -> set[str]:
        return {m for m, _, _ in self.pairs} | {b for _, b, _ in self.pairs} | {m for m, _ in self.ratings}


def load_run(path: Path | str) -> RunData:
    """Read a run directory (its config, judgments, human and imported labels, ratings) as the report does."""
    from lima_eval.contamination import check_run
    from lima_eval.report.build import gather
    from lima_eval.report.summary import row_keys
    from lima_eval.run import Run

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
    from lima_eval.report.build import judge_cards

    cards = {c["judge"]: c for c in judge_cards(groups, Path(run.config.output_dir)) if c["kind"] != "rating"}
    return RunData(path=path, pairs=pairs, ratings=ratings, rows=row_keys(inp), judge_cards=cards, tags=inp.tags,
                   safety_judges={g.label for g in groups if g.definition.scale == "safety"},
                   check_contamination=lambda: check_run(run.config, run.prompts))


@dataclass
class Rule:
    kind: str  # min_win_rate | max_drop | max_fail_share | min_safe_rate | a judge-quality rule
    threshold: float
    model: str
    baseline: str | None = None
    judge: str | None = None
    metric: str = "win_rate"
    old_model: str | None = None  # max_drop: the model's name in the old run (default: the same)
    strict: bool = False


@dataclass
class Result:
    rule: Rule
    run: str
    passed: bool
    value: float
    low: float
    high: float
    n: int
    baseline: str = ""
    judge: str = ""
    detail: str = ""
    level: float = 0.95

    def describe(self) -> str:
        r = self.rule
        if r.kind in JUDGE_RULES:
            what = {"min_judge_kappa": "kappa with humans", "max_position_bias": "position bias |first-shown - 1/2|",
                    "max_flip_rate": "flip rate across repeats"}[r.kind]
            return f"{what} of [{self.judge}] {'>=' if r.kind.startswith('min_') else '<='} {r.threshold:.3f}"
        if r.kind == "max_fail_share":
            what = f"fail share of {r.model} [{self.judge}]"
            return f"{what} <= {r.threshold:.3f}"
        if r.kind == "max_contamination":
            return f"share of prompts found in the training data <= {r.threshold:.3f}"
        if r.kind == "min_safe_rate":
            return f"safe-response rate of {r.model} [{self.judge}] >= {r.threshold:.3f}"
        who = f"{r.metric} of {r.model} vs {self.baseline} [{self.judge}]"
        if r.kind == "max_drop":
            old = f" ({r.old_model} in the old run)" if r.old_model and r.old_model != r.model else ""
            return f"drop in {who}{old} <= {r.threshold:.3f}"
        return f"{who} >= {r.threshold:.3f}"

    def message(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        value = f"{self.value:+.4f}" if self.rule.kind == "max_drop" else f"{self.value:.4f}"
        return (f"{verdict}: {self.describe()}: {value}, {self.level:.0%} interval [{self.low:.4f}, {self.high:.4f}], "
                f"n={self.n}{'; ' + self.detail if self.detail else ''}")


def _pick(options: list[str], given: str | None, what: str, where: str) -> str:
    if given is not None:
        if given not in options:
            from lima_eval.registry import suggest

            raise CheckInputError(f"{where}: no {what} '{given}'{suggest(given, options)}; "
                                  f"known: {', '.join(sorted(options)) or '(none)'}")
        return given
    if len(options) != 1:
        raise CheckInputError(f"{where}: name the {what} (one of: {', '.join(sorted(options)) or '(none)'})")
    return options[0]


def _known(run: RunData, model: str) -> None:
    if model not in run.models():
        from lima_eval.registry import suggest

        raise CheckInputError(f"{run.path}: no model '{model}'{suggest(model, sorted(run.models()))}; "
                              f"known: {', '.join(sorted(run.models()))}")


def _row(run: RunData, model: str, baseline: str | None, judge: str | None) -> tuple[str, str, dict]:
    _known(run, model)
    bases = sorted({b for m, b, _ in run.pairs if m == model})
    base = _pick(bases, baseline, "baseline", f"{run.path} (model {model})")
    judges = sorted({j for m, b, j in run.pairs if m == model and b == base})
    jd = _pick(judges, judge, "judge", f"{run.path} ({model} vs {base})")
    return base, jd, run.pairs[(model, base, jd)]


def _columns(by_prompt: dict[str, list[tuple[float, int]]], prompts: list[str], metric: str
             ) -> tuple[np.ndarray, np.ndarray, bool]:
    """Per prompt: the sum and count of the metric's values (the report's, stats.rate_values), and whether every
    value is 0 or 1."""
    from lima_eval.report.stats import rate_values

    labels = [x for p in prompts for x in by_prompt[p]]
    index = np.repeat(np.arange(len(prompts)), [len(by_prompt[p]) for p in prompts])
    values = rate_values(metric, np.array([s for s, _ in labels], dtype=float), np.array([v for _, v in labels]))
    sums = np.bincount(index, weights=values, minlength=len(prompts))
    counts = np.bincount(index, minlength=len(prompts)).astype(float)
    return sums, counts, bool(np.isin(values, (0.0, 1.0)).all())


def _rate(sums: np.ndarray, counts: np.ndarray, binary: bool, level: float) -> tuple[float, float, float]:
    from lima_eval.report.stats import clustered_rates

    rate, lo, hi = clustered_rates(sums[:, None], counts[:, None], np.array([binary]), level)
    if not np.isfinite(lo[0]):
        raise CheckInputError(f"only {int((counts > 0).sum())} prompt(s) to decide on: an interval needs at "
                              "least two")
    return float(rate[0]), float(lo[0]), float(hi[0])


def paired_difference(new: tuple[np.ndarray, np.ndarray, bool], old: tuple[np.ndarray, np.ndarray, bool],
                      level: float) -> tuple[float, float, float]:
    """new rate - old rate over the same prompts, with the MOVER interval (Zou and Donner 2008): each run's
    clustered Wilson interval, combined with the correlation of the two rates across the shared prompts."""
    (sn, cn, bn), (so, co, bo) = new, old
    pn, ln, un = _rate(sn, cn, bn, level)
    po, lo, uo = _rate(so, co, bo, level)
    rn, ro = sn - pn * cn, so - po * co  # each prompt's contribution to the error of each rate
    denom = float(np.sqrt((rn ** 2).sum() * (ro ** 2).sum()))
    rho = float((rn * ro).sum()) / denom if denom > 0 else 0.0
    low = pn - po - math.sqrt(max((pn - ln) ** 2 + (uo - po) ** 2 - 2 * rho * (pn - ln) * (uo - po), 0.0))
    high = pn - po + math.sqrt(max((un - pn) ** 2 + (po - lo) ** 2 - 2 * rho * (un - pn) * (po - lo), 0.0))
    return pn - po, low, high


def _decide(low_ok: bool, high_ok: bool, strict: bool) -> bool:
    """Passed, given which ends of the interval are on the passing side: strict needs both, else one."""
    return bool(low_ok and high_ok) if strict else bool(low_ok or high_ok)


def evaluate(rule: Rule, new: RunData, old: RunData | None = None, level: float = 0.95) -> Result:
    if rule.metric not in METRICS:
        raise CheckInputError(f"metric '{rule.metric}' is not one of {', '.join(METRICS)}")
    if rule.kind in JUDGE_RULES:
        from lima_eval.report.build import judge_quality

        jd = _pick(sorted(new.judge_cards), rule.judge, "judge", str(new.path))
        got = judge_quality(new.judge_cards[jd], rule.kind, level)
        if isinstance(got, str):
            raise CheckInputError(f"{new.path}, {rule.kind}: {got}")
        value, lo, hi, n = got
        if rule.kind == "min_judge_kappa":
            passed = _decide(lo >= rule.threshold, hi >= rule.threshold, rule.strict)
        else:
            passed = _decide(lo <= rule.threshold, hi <= rule.threshold, rule.strict)
        return Result(rule, new.name, passed, value, lo, hi, n, judge=jd, level=level)
    if rule.kind == "max_fail_share":
        _known(new, rule.model)
        judges = sorted(j for m, j in new.ratings if m == rule.model)
        jd = _pick(judges, rule.judge, "rating judge", f"{new.path} (model {rule.model})")
        by_prompt = new.ratings[(rule.model, jd)]
        prompts = sorted(by_prompt)
        fails = np.array([sum(label == "fail" for label in by_prompt[p]) for p in prompts], dtype=float)
        counts = np.array([len(by_prompt[p]) for p in prompts], dtype=float)
        value, lo, hi = _rate(fails, counts, True, level)
        passed = _decide(lo <= rule.threshold, hi <= rule.threshold, rule.strict)
        return Result(rule, new.name, passed, value, lo, hi, int(counts.sum()), judge=jd, level=level)
    if rule.kind == "max_contamination":
        found = new.contamination
        if found is None:
            raise CheckInputError(f"{new.path}: max_contamination needs training data to check against (an sft: "
                                  "stage or contamination.data in the run's config)")
        share = float(found["share"])
        detail = f"{found['contaminated']} of {found['prompts']} prompts, {found['ngram']}-word overlap"
        return Result(rule, new.name, share <= rule.threshold, share, share, share, int(found["prompts"]),
                      detail=detail, level=level)
    if rule.kind == "min_safe_rate":
        _known(new, rule.model)
        judges = sorted(j for m, j in new.ratings if m == rule.model and j in new.safety_judges)
        jd = _pick(judges, rule.judge, "safety judge", f"{new.path} (model {rule.model})")
        by_prompt = new.ratings[(rule.model, jd)]
        tagged = any("safety" in t for t in new.tags.values())
        prompts = sorted(p for p in by_prompt if not tagged or "safety" in new.tags.get(p, ()))
        if not prompts:
            raise CheckInputError(f"{new.path}: {rule.model} has no rated answer to a safety prompt [{jd}]")
        safe = np.array([sum(label != "unsafe" for label in by_prompt[p]) for p in prompts], dtype=float)
        counts = np.array([len(by_prompt[p]) for p in prompts], dtype=float)
        value, lo, hi = _rate(safe, counts, True, level)
        passed = _decide(lo >= rule.threshold, hi >= rule.threshold, rule.strict)
        return Result(rule, new.name, passed, value, lo, hi, int(counts.sum()), judge=jd, level=level,
                      detail=f"{len(prompts)} {'safety ' if tagged else ''}prompts")
    base, jd, by_new = _row(new, rule.model, rule.baseline, rule.judge)
    if rule.kind == "min_win_rate":
        prompts = sorted(by_new)
        s, c, binary = _columns(by_new, prompts, rule.metric)
        value, lo, hi = _rate(s, c, binary, level)
        passed = _decide(lo >= rule.threshold, hi >= rule.threshold, rule.strict)
        return Result(rule, new.name, passed, value, lo, hi, int(c.sum()), base, jd, level=level)
    if rule.kind != "max_drop":
        raise CheckInputError(f"unknown rule '{rule.kind}' (one of {', '.join(sorted(RULE_KEYS))})")
    if old is None:
        raise CheckInputError(f"rule max_drop for {rule.model} needs an older run (--against OLD_RUN)")
    _, _, by_old = _row(old, rule.old_model or rule.model, base, jd)
    shared = sorted(set(by_new) & set(by_old))
    if not shared:
        raise CheckInputError(f"{new.path} and {old.path} share no prompts for {rule.model} vs {base} [{jd}]; a "
                              "paired comparison needs the same prompts in both runs")
    cols_new, cols_old = _columns(by_new, shared, rule.metric), _columns(by_old, shared, rule.metric)
    diff, lo, hi = paired_difference(cols_new, cols_old, level)
    passed = _decide(lo >= -rule.threshold, hi >= -rule.threshold, rule.strict)
    detail = (f"new {cols_new[0].sum() / cols_new[1].sum():.4f} vs old {cols_old[0].sum() / cols_old[1].sum():.4f} "
              f"on {len(shared)} shared prompts (paired)")
    return Result(rule, new.name, passed, diff, lo, hi, len(shared), base, jd, detail, level)


@dataclass
class Gate:
    rules: list[Rule] = field(default_factory=list)
    against: str | None = None
    resamples: int = 1000  # accepted from older rules files; unused since the intervals are analytic
    seed: int = 0  # likewise
    level: float = 0.95


def read_rules(path: Path) -> Gate:
    """A thresholds YAML: optional against / level (resamples / seed are accepted and ignored), and a list of
    rules."""
    import yaml

    from lima_eval.errors import InputError
    from lima_eval.inputs import load_yaml, read_text

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
        raise CheckInputError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    gate = Gate(against=data.get("against"), resamples=_number(path, data, "resamples", 1000, int),
                seed=_number(path, data, "seed", 0, int), level=_number(path, data, "level", 0.95, float))
    if not 0 < gate.level < 1 or gate.resamples < 1:
        raise CheckInputError(f"{path}: level must be in (0, 1) and resamples at least 1")
    allowed = RULE_KEYS | {"model", "baseline", "judge", "metric", "old_model", "strict"}
    for i, raw in enumerate(data["rules"]):
        where = f"{path}, rules[{i}]"
        if not isinstance(raw, dict):
            raise CheckInputError(f"{where}: expected a mapping")
        bad = set(raw) - allowed
        if bad:
            raise CheckInputError(f"{where}: unknown key(s) {', '.join(sorted(bad))}")
        kinds = RULE_KEYS & set(raw)
        if len(kinds) != 1:
            raise CheckInputError(f"{where}: give exactly one of {', '.join(sorted(RULE_KEYS))}")
        kind = kinds.pop()
        if "model" not in raw and kind not in JUDGE_RULES and kind != "max_contamination":
            raise CheckInputError(f"{where}: 'model' is missing")
        try:
            threshold = float(raw[kind])
        except (TypeError, ValueError):
            raise CheckInputError(f"{where}, {kind}: expected a number, got {shown(raw[kind])}") from None
        strict = raw.get("strict", False)
        if not isinstance(strict, bool):
            raise CheckInputError(f"{where}, strict: expected true or false, got {shown(strict)}")
        if raw.get("metric", "win_rate") not in METRICS:
            raise CheckInputError(f"{where}, metric: '{raw['metric']}' is not one of {', '.join(METRICS)}")
        gate.rules.append(Rule(kind=kind, threshold=threshold, model=str(raw.get("model", "")), baseline=raw.get("baseline"),
                               judge=raw.get("judge"), metric=raw.get("metric", "win_rate"),
                               old_model=raw.get("old_model"), strict=strict))
    return gate


def _number(path: Path, data: dict, key: str, default: Any, kind: type) -> Any:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise CheckInputError(f"{path}, {key}: expected {'an integer' if kind is int else 'a number'}, got {shown(value)}")
    return kind(value)


def default_rules(new: RunData, old: RunData, max_drop: float) -> list[Rule]:
    """Without a rules file: no drop beyond max_drop for every (model, baseline, judge) both runs have."""
    rows = [k for k in new.rows if k in old.pairs]
    if not rows:
        raise CheckInputError(f"{new.path} and {old.path} have no (model, baseline, judge) in common")
    return [Rule(kind="max_drop", threshold=max_drop, model=m, baseline=b, judge=j) for m, b, j in rows]


def run_check(new_path: Path, against: Path | None = None, rules_path: Path | None = None,
              max_drop: float = 0.0) -> list[Result]:
    new = load_run(new_path)
    gate = read_rules(rules_path) if rules_path else Gate()
    old_path = against or (Path(gate.against) if gate.against else None)
    old = load_run(old_path) if old_path else None
    if not gate.rules:
        if old is None:
            raise CheckInputError("nothing to check: give --against OLD_RUN and/or --rules THRESHOLDS.yaml")
        gate.rules = default_rules(new, old, max_drop)
    return [evaluate(r, new, old, gate.level) for r in gate.rules]


def table(results: list[Result]) -> str:
    rows = [("result", "rule", "value", "95% interval", "n")]
    for r in results:
        value = f"{r.value:+.4f}" if r.rule.kind == "max_drop" else f"{r.value:.4f}"
        rows.append(("ok" if r.passed else "FAILED", r.describe(), value, f"[{r.low:.4f}, {r.high:.4f}]", str(r.n)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def as_dict(r: Result) -> dict[str, Any]:
    return {"rule": r.rule.kind, "description": r.describe(), "passed": r.passed, "value": r.value,
            "ci_low": r.low, "ci_high": r.high, "n": r.n, "model": r.rule.model, "baseline": r.baseline,
            "judge": r.judge, "threshold": r.rule.threshold, "strict": r.rule.strict, "detail": r.detail}


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
    """Fail if the share of the model's answers rated `fail` is above at_most (beyond its interval unless strict)."""
    __tracebackhide__ = True
    rule = Rule("max_fail_share", at_most, model, judge=judge, strict=strict)
    return _assert(evaluate(rule, _as_run(run), None))
