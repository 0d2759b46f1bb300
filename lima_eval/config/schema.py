"""The run config's schema: typed dataclasses (sampling, endpoints, models, judges, benchmark, SFT, the run) and
how plain data becomes them, strictly (unknown keys and ill-typed or out-of-range values are errors naming the
key)."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lima_eval.errors import ConfigError, LimaEvalError, UnknownNameError
from lima_eval.families import guess
from lima_eval.inputs import shown
from lima_eval.recipe import SFTConfig
from lima_eval.records import Generation, Prompt
from lima_eval.registry import BACKENDS, suggest


@dataclass
class Sampling:
    """Decoding settings. Defaults are LIMA's (Zhou et al. 2023, section 2)."""

    temperature: float = 0.7  # 0 means greedy
    top_p: float = 0.9
    repetition_penalty: float = 1.2
    max_new_tokens: int = 2048
    stop: list[str] = field(default_factory=list)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


@dataclass
class Endpoint:
    """Where a model runs: a backend name, the settings every backend shares, and the backend's own options.

    A backend's options (hf: dtype, device, batch_size...; openai: base_url, api_key_env, timeout...) are written
    flat in the model's or judge's section, next to the shared keys; the backend's `Options` dataclass declares
    and checks them (`lima-eval backends` lists them). They are kept here as a mapping, so a plugin backend can
    have options lima-eval has never heard of.
    """

    # hf | vllm | vllm-server | openai | scripted | imported (answers from import-answers) | plugins
    backend: str = "hf"
    model: str = ""  # local path, Hugging Face id, "embedded:NAME", or an API model name
    sampling: Sampling = field(default_factory=Sampling)
    prompt_format: str = "auto"  # auto (chat template if the tokenizer has one) | chat | plain
    system_prompt: str | None = None
    concurrency: int = 4  # requests in flight (API backends)
    revision: str | None = None  # a version tag that goes into record ids (set for SFT outputs)
    family: str = ""  # the model's family (gpt, claude, llama...) for self-preference warnings; "" = guessed from model
    options: dict[str, Any] = field(default_factory=dict)  # the backend's own keys, checked by its Options

    @classmethod
    def make(cls, **values: Any) -> Any:
        """An endpoint from keywords as a config section gives them (a backend's options flat among the rest)."""
        return build_section(cls, values, "")

    @property
    def imported(self) -> bool:
        """Answers come from `lima-eval import-answers`; nothing is generated for this model."""
        return self.backend == IMPORTED

    def backend_options(self, where: str = "") -> Any:
        """The backend's own options as its Options dataclass; unknown or ill-typed keys are ConfigErrors."""
        return backend_options(self, where)

    def identity(self) -> dict[str, Any]:
        """What defines the output (goes into record ids); not transport details such as timeouts."""
        opts_cls = getattr(BACKENDS.load(self.backend), "Options", None)
        marked = [f.name for f in dataclasses.fields(opts_cls) if f.metadata.get("identity")] if opts_cls else []
        defaults = opts_cls() if opts_cls else None
        # Ids made before backends owned their options always carried a dtype ('auto' where a backend has none).
        picked = {"dtype": "auto"} | {k: self.options.get(k, getattr(defaults, k)) for k in marked}
        return {
            "backend": self.backend,
            "model": self.model,
            "sampling": dataclasses.asdict(self.sampling),
            "prompt_format": self.prompt_format,
            "system_prompt": self.system_prompt,
        } | picked | ({"revision": self.revision} if self.revision else {}) | (
            # Plain-format prompts gained the model's BOS: answers made without it are not reused.
            {"plain_bos": True} if self.prompt_format == "plain" else {})


IMPORTED = "imported"


def identity_option(default: Any) -> Any:
    """A backend option that changes the answers (dtype, quantisation...): it goes into generation ids."""
    return field(default=default, metadata={"identity": True})


def backend_options(spec: Endpoint, where: str = "") -> Any:
    """spec.options checked against its backend's Options dataclass (strict; keys named by config path)."""
    try:
        opts_cls = getattr(BACKENDS.load(spec.backend), "Options", None)
    except UnknownNameError as exc:
        raise ConfigError(f"config key '{where + '.' if where else ''}backend': {exc}") from exc
    known = [f.name for f in dataclasses.fields(opts_cls)] if opts_cls else []
    for key in spec.options:
        if key not in known:
            raise ConfigError(_unknown_option(spec, str(key), where, known))
    if opts_cls is None:
        return None
    opts = build_section(opts_cls, dict(spec.options), where)
    if callable(getattr(opts, "check", None)):  # rules beyond one key's type (the vllm backends' engine:)
        opts.check(where)
    return opts


def _unknown_option(spec: Endpoint, key: str, where: str, known: list[str]) -> str:
    """The error for a key that is neither the section's own nor its backend's: every key the section takes
    (its shared keys, the backend's options), the nearest of them, and the backends that have it, if any."""
    shared = [f.name for f in dataclasses.fields(spec) if f.name != "options"]
    path = f"{where}.{key}" if where else key
    options = f"options {', '.join(known)}" if known else "no options of its own"
    mine = f"backend '{spec.backend}' has {options}"
    section = where or "the section"
    hint = suggest(key, known + shared)
    if hint:
        return f"unknown config key '{path}'{hint}; {section} takes {', '.join(shared)}; {mine}"
    others = _backends_with(key)
    switch = (f"; {key} is an option of backend {', '.join(others)}: set {where + '.' if where else ''}backend to "
              f"{'it' if len(others) == 1 else 'one of them'} to use it") if others else ""
    return f"unknown config key '{path}' ({mine}); {section} also takes {', '.join(shared)}{switch}"


def _backends_with(key: str) -> list[str]:
    """The backends (built in or plugins) that have an option `key`."""
    found = []
    for name in BACKENDS.names():
        try:
            opts_cls = getattr(BACKENDS.load(name), "Options", None)
        except (ImportError, LimaEvalError):  # a broken plugin says so where it is used, not in this hint
            continue
        if opts_cls is not None and key in {f.name for f in dataclasses.fields(opts_cls)}:
            found.append(name)
    return found


@dataclass
class ModelSpec(Endpoint):
    """A model whose answers are evaluated (or used as a baseline)."""

    name: str = ""


def family_of(spec: Endpoint) -> str:
    """An endpoint's family (docs/families.md): its `family:` key, else guessed from its model id, else (a model)
    from its name."""
    if spec.family:
        return spec.family.strip().lower()
    return guess(spec.model) or (guess(spec.name) if isinstance(spec, ModelSpec) else "")


@dataclass
class StopRule:
    """`stop_when_decided`: judge each (model, baseline) pair's prompts in a seeded random order, `step` prompts at a
    time, and stop once the pair's always-valid win-rate interval lies wholly above or below `threshold`
    (docs/adaptive.md). Ties count half."""

    threshold: float = 0.5
    confidence: float = 0.95
    step: int = 16  # prompts per pair per round
    min_prompts: int = 32  # never stop before this many prompts have a verdict


@dataclass
class JudgeSpec(Endpoint):
    """The judge: a definition in judges/ (prompt template + parser) run on some endpoint."""

    name: str = "lima-pairwise"  # a judge in judges/ (see `lima-eval judges list`) or a judge folder path
    # both (default): each pair is judged in both orders (two judgments), combined per `combine`, so a judge's
    # preference for the first-shown answer cancels out; random: one order, a seeded coin flip per prompt
    # (recorded): half the calls, but a position-biased judge then adds noise (or, on few prompts, a verdict).
    order: str = "both"
    # both-if-close: one order (the seeded coin flip), and the other only where that verdict is a tie or, with
    # logprobs, its margin (top option's probability minus the next one's) is below `close_below`.
    close_below: float = 0.5
    stop_when_decided: StopRule | None = None  # adaptive stopping per (model, baseline) pair (StopRule)
    # order: both -> tie (the default): the two orders must agree, else the pair is a tie (MT-bench's rule);
    # separate: each order counts as its own judgment. A jury: majority (the default) | mean-probability.
    combine: str = ""
    logprobs: bool = False  # read the verdict from the option tokens' probabilities (stores P(A), P(B), P(tie))
    top_logprobs: int = 20
    cache: bool = True  # reuse replies from the persistent judge cache (never pay twice)
    cache_path: str | None = None  # default: $LIMA_EVAL_JUDGE_CACHE or ~/.cache/lima-eval/judge-cache.sqlite
    # Bounds on the judge's quality (min_judge_kappa, max_position_bias, max_flip_rate, as in `lima-eval check`):
    # the report marks its verdicts untrusted when one fails.
    require: dict[str, float] = field(default_factory=dict)
    # A jury: these judges (two or more, each a judge section of its own) judge every item and their verdicts
    # are combined per `combine`; the jury is one judge in the report, its card and `check` (docs/juries.md).
    jury: list[JudgeSpec] = field(default_factory=list)
    abstain: bool = False  # a jury without a clear verdict gives none (the item goes to the human queue)
    # ... clear: the winning verdict's share of the votes (or mean probability) is above this
    abstain_below: float = 0.5
    # Judges decode greedily and briefly unless the config says otherwise.
    sampling: Sampling = field(
        default_factory=lambda: Sampling(temperature=0.0, top_p=1.0, repetition_penalty=1.0, max_new_tokens=256)
    )

    def __post_init__(self) -> None:
        if self.jury and isinstance(self.jury[0], JudgeSpec):
            self.name = self.jury[0].name  # a jury's verdicts are in its first juror's terms (same kind for all)

    @property
    def two_orders(self) -> bool:
        """Whether pairs may be judged in both orders (records then combine per order_rule)."""
        return self.order in ("both", "both-if-close")

    @property
    def order_rule(self) -> str:
        """How the two orders of a pair combine: tie (MT-bench's rule) or separate; a jury's always tie."""
        return "tie" if self.jury or not self.combine else self.combine

    @property
    def jury_rule(self) -> str:
        """How a jury combines its jurors' verdicts: majority or mean-probability."""
        return self.combine or "majority"


@dataclass
class BenchmarkSpec:
    """The prompt set: a registered name (see benchmarks/) and/or a local JSONL/CSV path."""

    name: str = "demo"
    path: str | None = None
    limit: int | None = None  # evaluate only the first N prompts
    # Reference answers for reference-guided judges: a JSONL (MT-bench's reference_answer format, or {id,
    # reference}), or `default` for the benchmark's own (mt-bench: FastChat's GPT-4 references, downloaded once).
    references: str | None = None
    shard: str | None = None  # "i/N": only this machine's share of the prompts (lima-eval run --shard; merge)


@dataclass
class ContaminationSpec:
    """Which training data the benchmark prompts are checked against (besides the SFT stage's own data)."""

    data: list[str] = field(default_factory=list)  # JSON / JSONL files (or SFT data names) a model was trained on
    ngram: int = 13  # words per n-gram (GPT-3's and lm-eval's 13)


@dataclass
class SFTSection(SFTConfig):
    """A run's SFT stage: its output becomes the model `name` of the run (added to `models` if absent)."""

    name: str = "sft"


@dataclass
class RunConfig:
    """Everything one `lima-eval run` does."""

    name: str = "run"
    benchmark: BenchmarkSpec = field(default_factory=BenchmarkSpec)
    sft: SFTSection | None = None
    models: list[ModelSpec] = field(default_factory=list)
    baselines: list[str] = field(default_factory=list)
    judge: JudgeSpec = field(default_factory=JudgeSpec)
    judges: list[JudgeSpec] = field(default_factory=list)  # more judges, e.g. lima-absolute ratings
    output_dir: str = "results"
    seed: int = 0
    round_robin: bool = False  # judge every pair of models (checkpoint selection) instead of model vs baseline
    contamination: ContaminationSpec = field(default_factory=ContaminationSpec)
    # Stop before a stage whose estimated cost (lima-eval run --dry-run's) would take this invocation's spending
    # over this many USD; stages without a price count as free.
    budget_usd: float | None = None

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def all_judges(self) -> list[JudgeSpec]:
        return [self.judge] + list(self.judges)

    def model(self, name: str) -> ModelSpec:
        for m in self.models:
            if m.name == name:
                return m
        raise ConfigError(f"no model named '{name}'{suggest(name, [m.name for m in self.models])}")

    def generation_identity(self, spec: Endpoint) -> dict[str, Any]:
        """What makes a model's answers what they are: its endpoint identity and the run seed (in every
        generation id; the one recipe every stage uses)."""
        return spec.identity() | {"seed": self.seed}

    def generation_ids(self, spec: Endpoint, name: str | None = None) -> Callable[[Prompt, int], str]:
        """The id of a model's answer to a prompt's turn: the one generation-id recipe of every stage (generation,
        judging, imports, the dry run, judge cards). `name` is the model's (default: the spec's own); its
        identity is computed once, for all prompts."""
        ident = self.generation_identity(spec)
        model = name if name is not None else str(getattr(spec, "name", ""))

        def generation_id(prompt: Prompt, turn: int = 0) -> str:
            return Generation.make_id(prompt, model, ident, turn)

        return generation_id

    def pairs(self) -> list[tuple[str, str]]:
        """(model under test, baseline) for every model that is not a baseline, against every baseline."""
        if self.round_robin:
            names = [m.name for m in self.models]
            return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
        return [(m.name, b) for m in self.models if m.name not in self.baselines for b in self.baselines]


# --- building dataclasses from plain data, strictly --------------------------------------------------

# Every number a config can set has a range, by key name (the same key means the same thing in every section):
# (lowest, highest, whether the lowest itself is allowed). Backend plugins' options are held to it too.
RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "temperature": (0, None, True), "top_p": (0, 1, False), "repetition_penalty": (0, None, False),
    "max_new_tokens": (1, None, True), "concurrency": (1, None, True), "timeout": (0, None, False),
    "max_retries": (0, None, True), "batch_size": (1, None, True), "max_batch_tokens": (1, None, True),
    "server_timeout": (0, None, False), "top_logprobs": (1, 20, True), "limit": (1, None, True),
    "epochs": (1, None, True), "learning_rate": (0, None, False), "final_learning_rate": (0, None, True),
    "adam_beta1": (0, 1, True), "adam_beta2": (0, 1, True), "weight_decay": (0, None, True),
    "micro_batch_size": (1, None, True), "max_seq_len": (8, None, True), "max_steps": (1, None, True),
    "max_examples": (1, None, True), "dev_max_new_tokens": (1, None, True), "lora_r": (1, None, True),
    "lora_alpha": (0, None, False), "lora_dropout": (0, 1, True), "residual_dropout": (0, 1, True),
    "keep_epochs": (1, None, True),
    "abstain_below": (0, 1, True), "ngram": (1, 100, True), "budget_usd": (0, None, True),
    "poll_interval": (0, None, False), "poll_max": (0, None, False), "max_requests": (1, None, True),
    "resubmit": (0, None, True), "close_below": (0, 1, True), "threshold": (0, 1, False),
    "confidence": (0, 1, False), "step": (1, None, True), "min_prompts": (1, None, True),
}


def check_range(key: str, value: Any, path: str) -> None:
    """A ConfigError naming the key when a number is outside its range (NaN and infinities included)."""

    if key not in RANGES or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    low, high, low_ok = RANGES[key]
    bad = math.isnan(value) or math.isinf(value)
    bad |= low is not None and (value < low or (value == low and not low_ok))
    bad |= high is not None and value > high
    if bad:
        span = (f"{'>=' if low_ok else '>'} {low:g}" if low is not None else "") + (
            f"{' and ' if low is not None else ''}<= {high:g}" if high is not None else "")
        raise ConfigError(f"config key '{path}': {shown(value)} is out of range (must be {span})")


def build_section(cls: type, data: Any, where: str, base: Any = None) -> Any:
    """cls from a mapping, strictly. Keys the mapping leaves out keep the value they have in `base` (the
    section's own default: a judge's `sampling` starts from the judge's greedy defaults, not from the models'),
    so a partial override is merged key by key at every level."""
    if dataclasses.is_dataclass(data):
        return data
    if cls is BenchmarkSpec and isinstance(data, str):
        data = {"name": data}
    if cls is StopRule and data is True:  # stop_when_decided: true -> the defaults
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    if not isinstance(base, cls):
        base = cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields or key == "options":
            if "options" in fields and key != "options":  # an endpoint: the backend's own key, checked by it
                extra[key] = value
                continue
            if key not in fields:
                raise ConfigError(f"unknown config key '{path}'{suggest(str(key), list(fields))}; "
                                  f"{where or 'a run config'} takes {', '.join(fields)}")
        kwargs[key] = _coerce(hints[key], value, path, getattr(base, key))
        for i, item in enumerate(kwargs[key] if isinstance(kwargs[key], list) else [kwargs[key]]):
            check_range(str(key), item, path if not isinstance(kwargs[key], list) else f"{path}.{i}")
    if extra or "options" in kwargs:
        kwargs["options"] = dict(base.options) | kwargs.get("options", {}) | extra
    return dataclasses.replace(base, **kwargs)


def _coerce(tp: Any, value: Any, path: str, default: Any = None) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        for arg in args[:-1]:
            try:
                return _coerce(arg, value, path, default)
            except ConfigError:
                continue
        return _coerce(args[-1], value, path, default)
    if dataclasses.is_dataclass(tp):
        return build_section(tp, value, path, default)  # type: ignore[arg-type]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{path}': expected a mapping, got {shown(value)}")
        return dict(value)
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"config key '{path}': expected a list, got {shown(value)}")
        return [_coerce(item, v, f"{path}.{i}") for i, v in enumerate(value)]
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads "1e-5" (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp is typing.Any:
        return value
    if tp in (int, float, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise ConfigError(f"config key '{path}': expected {tp.__name__}, got {shown(value)}")
        if isinstance(value, str) and "\x00" in value:  # never meaningful; a NUL in a path is an OS error later
            raise ConfigError(f"config key '{path}': {shown(value)} has a NUL character")
        return value
    return value


def to_plain(cfg: RunConfig) -> dict[str, Any]:
    """The config as plain data, as a user would write it: a backend's options sit flat in their section."""
    return _flatten_options(dataclasses.asdict(cfg))


def _flatten_options(node: Any) -> Any:
    if isinstance(node, list):
        return [_flatten_options(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _flatten_options(v) for k, v in node.items() if k != "options" or not isinstance(v, dict)}
    if "backend" in node and isinstance(node.get("options"), dict):
        out |= node["options"]
    return out
