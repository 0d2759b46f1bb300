"""What every kind of `lima-eval check` rule shares: the run data it reads, the rule an entry of a rules file
gives, its result, and the CheckRule class each kind subclasses (looked up in CHECK_RULES by its key)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lima_eval.errors import CheckInputError, UnknownNameError
from lima_eval.inputs import shown
from lima_eval.records import Judgment
from lima_eval.registry import CHECK_RULES, suggest

# The keys of a rules entry that fill Rule's shared fields; which of them a kind takes is its `keys`.
SHARED_KEYS = frozenset({"model", "baseline", "judge", "metric", "old_model", "strict"})


@dataclass
class RunData:
    """One run's labels, by (model, baseline, judge) and prompt: per judgment the model's (score, verdict)."""

    path: Path
    pairs: dict[tuple[str, str, str], dict[str, list[tuple[float, int]]]]
    ratings: dict[tuple[str, str], dict[str, list[str]]]
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (model, baseline, judge), the report's
    judge_cards: dict[str, dict[str, Any]] = field(default_factory=dict)  # the report's card per model judge
    # Imported judges whose files do not say which answer was shown first (AlpacaEval's): no card, no order data.
    unordered_judges: set[str] = field(default_factory=set)
    tags: dict[str, tuple[str, ...]] = field(default_factory=dict)  # prompt id -> tags (safety prompts)
    safety_judges: set[str] = field(default_factory=set)  # rating judges on the safety scale
    # Every pairwise judgment the report counts, failed ones (error set, no verdict) included.
    judgments: list[Judgment] = field(default_factory=list)
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


@dataclass
class Rule:
    """One rule of a gate: its kind (the key in the rules file) and threshold, and the keys its kind takes."""

    kind: str  # a CHECK_RULES name: min_win_rate, max_drop, max_fail_share, ...
    threshold: float
    model: str
    baseline: str | None = None
    judge: str | None = None
    metric: str = "win_rate"
    old_model: str | None = None  # max_drop: the model's name in the old run (default: the same)
    strict: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # a kind's own keys beyond the shared ones


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
        return rule_kind(self.rule.kind).describe(self)

    def shown_value(self) -> str:
        return rule_kind(self.rule.kind).show(self.value)

    def shown_interval(self) -> str:
        return rule_kind(self.rule.kind).show_interval(self.low, self.high)

    def message(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        return (f"{verdict}: {self.describe()}: {self.shown_value()}, {self.level:.0%} interval "
                f"{self.shown_interval()}, n={self.n}{'; ' + self.detail if self.detail else ''}")


class CheckRule:
    """A kind of rule. Subclasses set `name` (their key in a rules file, also their CHECK_RULES name) and
    `keys`, and implement evaluate and describe; parse and threshold cover what most kinds need."""

    name: ClassVar[str] = ""
    keys: ClassVar[frozenset[str]] = frozenset({"model", "strict"})  # the other keys its entry may have
    needs_model: ClassVar[bool] = True

    def parse(self, raw: dict[str, Any], where: str) -> Rule:
        """The rule of one entry of a rules file (its keys already checked against `keys`)."""
        if self.needs_model and "model" not in raw:
            raise CheckInputError(f"{where}: 'model' is missing")
        threshold = self.threshold(raw[self.name], f"{where}, {self.name}")
        strict = raw.get("strict", False)
        if not isinstance(strict, bool):
            raise CheckInputError(f"{where}, strict: expected true or false, got {shown(strict)}")
        return Rule(kind=self.name, threshold=threshold, model=str(raw.get("model", "")),
                    baseline=raw.get("baseline"), judge=raw.get("judge"),
                    metric=raw.get("metric", "win_rate"), old_model=raw.get("old_model"), strict=strict,
                    options={k: v for k, v in raw.items() if k in self.keys - SHARED_KEYS})

    def threshold(self, value: Any, where: str) -> float:
        """The entry's value under the kind's key, checked."""
        try:
            return float(value)
        except (TypeError, ValueError):
            raise CheckInputError(f"{where}: expected a number, got {shown(value)}") from None

    def evaluate(self, rule: Rule, new: RunData, old: RunData | None, level: float) -> Result:
        """The rule decided on the run `new` (and `old`, the run it is compared with, where there is one)."""
        raise NotImplementedError

    def describe(self, result: Result) -> str:
        """What the rule asks, in one line (the table's 'rule' column)."""
        raise NotImplementedError

    def show(self, value: float) -> str:
        """A result's value as the table and messages print it."""
        return f"{value:.4f}"

    def show_interval(self, low: float, high: float) -> str:
        """A result's interval as the table and messages print it."""
        return f"[{low:.4f}, {high:.4f}]"


@functools.cache
def rule_kind(name: str) -> CheckRule:
    """The kind of rule registered under `name` (an instance of its class)."""
    try:
        cls = CHECK_RULES.load(name)
    except UnknownNameError as exc:
        raise CheckInputError(str(exc)) from None
    except (ImportError, AttributeError) as exc:  # a plugin's target that is not there
        target = CHECK_RULES.target(name)
        raise CheckInputError(f"check rule '{name}' ({target}) cannot be loaded: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, CheckRule)):
        raise CheckInputError(f"check rule '{name}' ({CHECK_RULES.target(name)}) is not a CheckRule subclass")
    return cls()


def parse_rule(raw: Any, where: str) -> Rule:
    """The rule of one entry of a rules file: its kind is the one key that names a registered rule."""
    if not isinstance(raw, dict):
        raise CheckInputError(f"{where}: expected a mapping")
    names = CHECK_RULES.names()
    kinds = [k for k in raw if k in names]
    if not kinds:
        unknown = [k for k in raw if k not in SHARED_KEYS]
        if unknown:
            raise CheckInputError(f"{where}: unknown key(s) {_keys(unknown)}{_hint(unknown, names)}; a rule is "
                                  f"one of {', '.join(names)}")
    if len(kinds) != 1:
        raise CheckInputError(f"{where}: give exactly one of {', '.join(names)}")
    try:
        kind = rule_kind(kinds[0])
    except CheckInputError as exc:
        raise CheckInputError(f"{where}: {exc}") from None
    allowed = sorted(kind.keys | {kind.name})
    bad = [k for k in raw if k not in allowed]
    if bad:
        raise CheckInputError(f"{where}: unknown key(s) {_keys(bad)} for {kind.name}{_hint(bad, allowed)}; "
                              f"it takes {', '.join(allowed)}")
    return kind.parse(raw, where)


def _keys(keys: Iterable[Any]) -> str:
    return ", ".join(sorted(k if isinstance(k, str) and len(k) <= 60 else shown(k) for k in keys))


def _hint(keys: list[Any], options: list[str]) -> str:
    """'did you mean' for the first of the keys that is close to an option."""
    return next((hint for k in keys if isinstance(k, str) and (hint := suggest(k, options))), "")


def pick(options: list[str], given: str | None, what: str, where: str) -> str:
    """`given` if it is one of the options, else the only option; an error naming the options otherwise."""
    if given is not None:
        if given not in options:
            raise CheckInputError(f"{where}: no {what} '{given}'{suggest(given, options)}; "
                                  f"known: {', '.join(sorted(options)) or '(none)'}")
        return given
    if len(options) != 1:
        raise CheckInputError(f"{where}: name the {what} (one of: {', '.join(sorted(options)) or '(none)'})")
    return options[0]


def known_model(run: RunData, model: str) -> None:
    """An error naming the run's models unless `model` is one of them."""
    if model not in run.models():
        raise CheckInputError(f"{run.path}: no model '{model}'{suggest(model, sorted(run.models()))}; "
                              f"known: {', '.join(sorted(run.models()))}")
