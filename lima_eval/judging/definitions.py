"""Judge definitions: judges/<name>/judge.yaml (config) + a prompt template with named placeholders.

Where judges come from, first match wins: folders on $LIMA_EVAL_JUDGES_PATH, ./judges in the working
directory, plugins (entry point group `lima_eval.judges`, whose target is a folder path or a function
returning one), then the judges shipped with lima-eval. `judge.name` may also be a folder path.

A judge.yaml names its kind (`kind: pairwise`); the interface a kind implements (JudgeKind) and the lookup by
name are here, so a definition is checked against its kind without importing the built-in kinds (kinds.py),
which build on the items (items.py) that build on definitions.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import yaml

from lima_eval.errors import ConfigError, InputError, JudgeDefinitionError, LimaEvalError, UnknownNameError
from lima_eval.inputs import load_yaml, read_text, shown
from lima_eval.records import Generation, Judgment, Prompt, Rating, content_id
from lima_eval.registry import BACKENDS, JUDGE_KINDS, JUDGES, PARSERS, suggest
from lima_eval.resources import data_dir

if TYPE_CHECKING:
    from lima_eval.backends.base import Completion
    from lima_eval.config import JudgeSpec, RunConfig
    from lima_eval.store import RunStore

Answers = dict[tuple[str, str, int], Generation]  # (prompt id, model, turn) -> the answer on disk


def placeholder_pattern(names: Iterable[str]) -> re.Pattern[str]:
    """{name} for each of `names` (longest first, so {answer_a_1} is not read as {answer_a})."""
    return re.compile(r"\{(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")\}")


@dataclass(frozen=True)
class JudgeDefinition:
    name: str
    kind: str  # a registered judge kind: pairwise | rating | pairwise-multiturn | a plugin's
    description: str
    template: str
    parser: str
    system: str | None = None
    reply_prefix: str | None = None  # local backends continue the judge's reply from here (e.g. "Verdict:")
    labels: tuple[str, ...] = ()  # rating judges: the scale, worst first (fail, pass, excellent / 1..6)
    scale: str = ""  # rating judges: a scale's name (lima_eval.scales): absolute, likert, safety, mt-bench, ...
    # Logprob verdicts: the token that answers each option (pairwise: A -> first, ...; ratings: each label).
    options: dict[str, str] = field(default_factory=dict)
    prices: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> USD per 1M input/output tokens
    source: str = "built-in"

    @cached_property
    def fingerprint(self) -> str:
        """Changes whenever the judge would be asked something different."""
        return content_id("judge-definition", self.kind, self.template, self.parser, self.system, self.reply_prefix)

    @cached_property
    def judge_kind(self) -> JudgeKind:
        """The kind's behaviour (items, records, store file)."""
        return get_kind(self.kind)

    @property
    def is_rating(self) -> bool:
        """Whether its records are Ratings (one answer on a scale) rather than pairwise Judgments."""
        return self.judge_kind.gives_ratings

    def messages(self, item: Any, prefill: bool = False) -> list[dict[str, str]]:
        """The chat messages for one item of this judge's kind."""
        return self.render(prefill=prefill, **self.judge_kind.values(item))

    def render(self, prefill: bool = False, **values: str) -> list[dict[str, str]]:
        """The chat messages for one item; every placeholder must be filled.

        With prefill, the reply prefix is added as an open assistant message for the backend to continue.
        """
        pattern = placeholder_pattern(self.judge_kind.placeholders | self.judge_kind.optional)
        missing = set(pattern.findall(self.template)) - set(values)
        if missing:
            raise LimaEvalError(f"judge '{self.name}': no value for placeholder(s) {sorted(missing)}")
        user = pattern.sub(lambda m: values[m.group(1)], self.template)
        msgs = [{"role": "user", "content": user}]
        if self.system:
            msgs.insert(0, {"role": "system", "content": self.system.strip()})
        if prefill and self.reply_prefix:
            msgs.append({"role": "assistant", "content": self.reply_prefix})
        return msgs

    def uses(self, placeholder: str) -> bool:
        """Whether the template shows this placeholder."""
        return "{" + placeholder + "}" in self.template

    @property
    def needs_reference(self) -> bool:
        """Whether the template shows a reference answer (the judge then only sees prompts that have one)."""
        return any(self.uses(p) for p in ("reference", "reference_1", "reference_2"))

    def price(self, model: str) -> dict[str, float] | None:
        """USD per 1M input / output tokens for `model` in this judge's price table (price_in)."""
        return price_in(self.prices, model)


class JudgeKind:
    """What every kind declares. Subclasses (the built-ins in kinds.py, plugins' through entry points) set the
    class attributes and implement the methods."""

    name: ClassVar[str] = ""
    placeholders: ClassVar[frozenset[str]] = frozenset()  # the template must use all of these
    # ... and may use these too: a prompt's reference answer (reference-guided judges); a judge whose template
    # uses one is asked only about prompts that have a reference (the rest are skipped, and counted).
    optional: ClassVar[frozenset[str]] = frozenset()
    record_type: ClassVar[type[Judgment | Rating]]
    needs_labels: ClassVar[bool] = False  # a scale of labels in judge.yaml (`labels:`)
    # The scale (lima_eval.scales) a rating judge of this kind rates on when its judge.yaml names none: the scale
    # names the report sections its ratings feed.
    scale: ClassVar[str] = ""
    # What the kind supports: a judge card against people's pairwise labels (lima-eval judge-card), and the
    # ordering and adaptive rules of pairs (order: both-if-close, stop_when_decided).
    supports_cards: ClassVar[bool] = False
    orders_pairs: ClassVar[bool] = False

    @property
    def gives_ratings(self) -> bool:
        return self.record_type is Rating

    def first_orders(self, items: list[Any], seed: int) -> tuple[list[Any], dict[str, Any]]:
        """For `order: both-if-close`: the items of the seeded first order, and each one's other order by its id.
        A kind without orders asks about every item once."""
        return list(items), {}

    def pair_of(self, item: Any) -> tuple[str, str]:
        """The (model, model) an item compares, for stop_when_decided's per-pair rounds."""
        raise ConfigError(f"judge kind '{self.name}' compares no pairs: stop_when_decided needs a pairwise kind")

    def default_options(self, labels: tuple[str, ...]) -> dict[str, str]:
        """The token that answers each option (logprob verdicts), when judge.yaml gives no `options:`."""
        return {label: label for label in labels}

    def plan(self, cfg: RunConfig, spec: JudgeSpec, definition: JudgeDefinition, ident: dict[str, Any],
             prompts: list[Prompt], answers: Answers) -> tuple[list[Any], int]:
        """The items to ask about and how many were skipped for a missing answer."""
        raise NotImplementedError

    def values(self, item: Any) -> dict[str, str]:
        """The placeholder values of one item."""
        raise NotImplementedError

    def to_record(self, item: Any, definition: JudgeDefinition, label: str, completion: Completion, prefix: str,
                  use_logprobs: bool, cached: bool) -> Judgment | Rating:
        raise NotImplementedError

    def on_disk(self, store: RunStore) -> dict[str, Any]:
        """This kind's records already in the run folder, by id."""
        return store.ratings() if self.gives_ratings else store.judgments()

    def append(self, store: RunStore, records: Iterable[Any]) -> int:
        return store.append_ratings(records) if self.gives_ratings else store.append_judgments(records)


@functools.cache
def get_kind(name: str) -> JudgeKind:
    """The kind named in a judge.yaml (an instance of its registered class)."""
    cls = JUDGE_KINDS.load(name)
    if not (isinstance(cls, type) and issubclass(cls, JudgeKind)):
        raise UnknownNameError(f"judge kind '{name}' ({JUDGE_KINDS.target(name)}) is not a JudgeKind subclass")
    return cls()


def all_placeholders() -> frozenset[str]:
    """Every placeholder some kind fills (a template that uses another kind's is named as wrong)."""
    out: frozenset[str] = frozenset()
    for name in JUDGE_KINDS.names():
        try:
            out |= get_kind(name).placeholders | get_kind(name).optional
        except (ImportError, UnknownNameError):
            continue  # a broken plugin kind is reported when a judge names it
    return out


def price_factor(backend: str) -> float:
    """The share of the synchronous price `backend` pays (the Batch API's 0.5 for openai-batch)."""
    return float(getattr(BACKENDS.load(backend), "price_factor", 1.0))


def paid_price(price: dict[str, float] | None, backend: str) -> dict[str, float] | None:
    """A price table entry as `backend` pays it."""
    factor = price_factor(backend)
    return None if price is None else {k: v * factor for k, v in price.items()}


def judge_price(spec: JudgeSpec) -> dict[str, float] | None:
    """What a judge (not a jury: its jurors each have their own) pays per 1M input / output tokens: the one price
    lookup of the report, juries and judge cards (its definition's table, at its backend's share)."""
    return paid_price(load_definition(spec.name).price(spec.model), spec.backend)


def price_in(table: dict[str, dict[str, float]], model: str) -> dict[str, float] | None:
    """USD per 1M input / output tokens for `model`: an exact entry, else the longest matching prefix."""
    if model in table:
        return table[model]
    matches = [k for k in table if model.startswith(k)]
    return table[max(matches, key=len)] if matches else None


def _prices(table: dict[str, Any], path: Path, prefix: str = "") -> dict[str, dict[str, float]]:
    """model -> {input, output} USD per 1M tokens, each entry checked (errors name the file and key)."""
    out = {}
    for model, p in table.items():
        ok = isinstance(p, dict) and {"input", "output"} <= set(p) and all(
            isinstance(p[k], (int, float)) and not isinstance(p[k], bool) for k in ("input", "output"))
        if not ok:
            raise JudgeDefinitionError(f"{path}, key '{prefix}{model}': give input and output as numbers "
                                       "(USD per 1M tokens)")
        for k in ("input", "output"):  # NaN would pass every budget check (NaN > budget is False)
            if not math.isfinite(p[k]) or p[k] < 0:
                raise JudgeDefinitionError(f"{path}, key '{prefix}{model}.{k}': {shown(p[k])} is not a price "
                                           "(a finite number >= 0, USD per 1M tokens)")
        out[str(model)] = {"input": float(p["input"]), "output": float(p["output"])}
    return out


def shared_prices() -> dict[str, dict[str, float]]:
    """The price table every judge starts from: prices.yaml beside the shipped judges (a judge.yaml's own
    `prices:` entries override it)."""
    path = data_dir("judges") / "prices.yaml"
    try:
        table = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError:
        return {}
    except yaml.YAMLError:
        raise JudgeDefinitionError(f"{path}: not valid YAML") from None
    if not isinstance(table, dict):
        raise JudgeDefinitionError(f"{path}: expected a mapping of model -> {{input, output}}")
    return _prices(table, path)


def _search_path() -> list[tuple[Path, str]]:
    dirs = [Path(p) for p in os.environ.get("LIMA_EVAL_JUDGES_PATH", "").split(os.pathsep) if p]
    dirs.append(Path.cwd() / "judges")
    shipped = data_dir("judges").resolve()
    return [(d, str(d)) for d in dirs if d.is_dir() and d.resolve() != shipped]


def available() -> dict[str, tuple[Path, str]]:
    """Every judge that can be named: name -> (folder, where it came from)."""
    found: dict[str, tuple[Path, str]] = {}
    for root, label in _search_path():
        for p in sorted(root.glob("*/judge.yaml")):
            found.setdefault(p.parent.name, (p.parent, label))
    for name in JUDGES.names():
        if name not in found:
            target = JUDGES.load(name)
            folder = Path(target() if callable(target) else target)
            found[name] = (folder, f"plugin {JUDGES.target(name)}")
    for p in sorted(data_dir("judges").glob("*/judge.yaml")):
        found.setdefault(p.parent.name, (p.parent, "built-in"))
    return found


def load_definition(name: str) -> JudgeDefinition:
    as_path = Path(name)
    if ("/" in name or os.sep in name) and (as_path / "judge.yaml").is_file():
        return read_folder(as_path, as_path.name.rstrip("/") or name, str(as_path))
    folders = available()
    if name not in folders:
        raise UnknownNameError(f"unknown judge '{name}'{suggest(name, list(folders))}; known: {', '.join(folders)}")
    folder, source = folders[name]
    return read_folder(folder, name, source)


def read_folder(folder: Path, name: str, source: str = "built-in") -> JudgeDefinition:
    """Read and check one judge folder; every problem names the file and the key."""
    cfg_path = folder / "judge.yaml"
    try:
        data: dict[str, Any] = load_yaml(read_text(cfg_path), cfg_path) or {}
    except InputError as exc:
        raise JudgeDefinitionError(str(exc)) from None
    except yaml.YAMLError:
        raise JudgeDefinitionError(f"{cfg_path}: not valid YAML") from None
    if not isinstance(data, dict):
        raise JudgeDefinitionError(f"{cfg_path}: expected a mapping of keys (kind, parser, ...)")
    kind = str(data.get("kind", "pairwise"))
    if kind not in JUDGE_KINDS.names():
        raise JudgeDefinitionError(f"{cfg_path}, key 'kind': '{kind}' is not one of "
                                   f"{', '.join(JUDGE_KINDS.names())}{suggest(kind, JUDGE_KINDS.names())}")
    try:
        impl = get_kind(kind)
    except (UnknownNameError, ImportError, AttributeError) as exc:
        raise JudgeDefinitionError(f"{cfg_path}, key 'kind': {exc}") from None
    template_path = folder / str(data.get("template", "prompt.txt"))
    try:
        template = read_text(template_path)
    except InputError as exc:
        raise JudgeDefinitionError(f"{cfg_path}, key 'template': {exc}") from None
    used = set(placeholder_pattern(all_placeholders() | impl.placeholders | impl.optional).findall(template))
    if not impl.placeholders <= used or not used <= impl.placeholders | impl.optional:
        need = ", ".join("{" + p + "}" for p in sorted(impl.placeholders))
        may = f" (and may use {', '.join('{' + p + '}' for p in sorted(impl.optional))})" if impl.optional else ""
        raise JudgeDefinitionError(f"{template_path}: a {kind} template must use exactly {need}{may}; "
                                   f"it uses {', '.join('{' + p + '}' for p in sorted(used)) or 'none'}")
    for key, kind_of in (("labels", list), ("options", dict), ("prices", dict)):
        if data.get(key) is not None and not isinstance(data[key], kind_of):
            raise JudgeDefinitionError(f"{cfg_path}, key '{key}': "
                                       f"expected a {'list' if kind_of is list else 'mapping'}")
    labels = tuple(str(x) for x in data.get("labels") or ())
    if impl.needs_labels and len(labels) < 2:
        raise JudgeDefinitionError(f"{cfg_path}, key 'labels': a {kind} judge needs its scale (two or more labels)")
    options = {str(k): str(v) for k, v in (data.get("options") or {}).items()} or impl.default_options(labels)
    prices = shared_prices() | _prices(data.get("prices") or {}, cfg_path, "prices.")
    parser = str(data.get("parser", name))
    try:
        PARSERS.target(parser)  # known now (built-in or a plugin's), not after paying for judge calls
    except UnknownNameError as exc:
        raise JudgeDefinitionError(f"{cfg_path}, key 'parser': {exc}") from None
    return JudgeDefinition(
        name=name, kind=kind, description=" ".join(str(data.get("description", "")).split()),
        template=template, parser=parser, system=data.get("system"),
        reply_prefix=data.get("reply_prefix"), labels=labels, scale=str(data.get("scale", "")),
        options=options, prices=prices, source=source,
    )
