"""Typed run config: defaults < YAML < --set overrides; unknown keys are errors that name the key."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lima_eval.errors import ConfigError
from lima_eval.registry import suggest
from lima_eval.sft.recipe import SFTConfig


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
    """Where a model runs: a backend name plus the settings the backends understand."""

    backend: str = "hf"  # hf | vllm | vllm-server | openai | imported (answers from import-answers) | plugins
    model: str = ""  # local path, Hugging Face id, "embedded:NAME", or an API model name
    sampling: Sampling = field(default_factory=Sampling)
    prompt_format: str = "auto"  # auto (chat template if the tokenizer has one) | chat | plain
    system_prompt: str | None = None
    dtype: str = "auto"  # hf: auto (float32 on CPU, bfloat16 on CUDA) | float32 | bfloat16 | float16
    device: str = "auto"  # hf: auto | cpu | cuda | cuda:N
    batch_size: int = 8  # hf: prompts per generate() call (at most)
    max_batch_tokens: int | None = None  # hf: cap on rows x (longest prompt + max_new_tokens) per call
    base_url: str | None = None  # openai: e.g. http://127.0.0.1:8000/v1 (default: api.openai.com)
    api_key_env: str = "OPENAI_API_KEY"  # openai: name of the environment variable holding the key
    concurrency: int = 4  # openai: requests in flight
    timeout: float = 120.0  # openai: seconds per request
    max_retries: int = 4  # openai: retries on 429 / 5xx / timeouts (Retry-After honoured)
    revision: str | None = None  # a version tag that goes into record ids (set for SFT outputs)
    # vllm / vllm-server: engine arguments passed to vllm.LLM or the server, e.g. tensor_parallel_size,
    # data_parallel_size, max_model_len, gpu_memory_utilization, enforce_eager.
    engine: dict[str, Any] = field(default_factory=dict)
    server_timeout: float = 600.0  # vllm-server: seconds to wait for the server to become ready

    def identity(self) -> dict[str, Any]:
        """What defines the output (goes into record ids); not transport details such as timeouts."""
        return {
            "backend": self.backend,
            "model": self.model,
            "sampling": dataclasses.asdict(self.sampling),
            "prompt_format": self.prompt_format,
            "system_prompt": self.system_prompt,
            "dtype": self.dtype,
        } | ({"revision": self.revision} if self.revision else {}) | (
            # Plain-format prompts gained the model's BOS: answers made without it are not reused.
            {"plain_bos": True} if self.prompt_format == "plain" else {})


@dataclass
class ModelSpec(Endpoint):
    """A model whose answers are evaluated (or used as a baseline)."""

    name: str = ""


@dataclass
class JudgeSpec(Endpoint):
    """The judge: a definition in judges/ (prompt template + parser) run on some endpoint."""

    name: str = "lima-pairwise"  # a judge in judges/ (see `lima-eval judges list`) or a judge folder path
    # both (default): each pair is judged in both orders (two judgments), combined per `combine`, so a judge's
    # preference for the first-shown answer cancels out; random: one order, a seeded coin flip per prompt
    # (recorded): half the calls, but a position-biased judge then adds noise (or, on few prompts, a verdict).
    order: str = "both"
    # order: both -> tie: the two orders must agree, else the pair is a tie (MT-bench's rule);
    # separate: each order counts as its own judgment.
    combine: str = "tie"
    logprobs: bool = False  # read the verdict from the option tokens' probabilities (stores P(A), P(B), P(tie))
    top_logprobs: int = 20
    cache: bool = True  # reuse replies from the persistent judge cache (never pay twice)
    cache_path: str | None = None  # default: $LIMA_EVAL_JUDGE_CACHE or ~/.cache/lima-eval/judge-cache.sqlite
    # Judges decode greedily and briefly unless the config says otherwise.
    sampling: Sampling = field(
        default_factory=lambda: Sampling(temperature=0.0, top_p=1.0, repetition_penalty=1.0, max_new_tokens=256)
    )


@dataclass
class BenchmarkSpec:
    """The prompt set: a registered name (see benchmarks/) and/or a local JSONL/CSV path."""

    name: str = "demo"
    path: str | None = None
    limit: int | None = None  # evaluate only the first N prompts


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

    def pairs(self) -> list[tuple[str, str]]:
        """(model under test, baseline) for every model that is not a baseline, against every baseline."""
        if self.round_robin:
            names = [m.name for m in self.models]
            return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
        return [(m.name, b) for m in self.models if m.name not in self.baselines for b in self.baselines]


# --- building dataclasses from plain data, strictly --------------------------------------------------


def build_section(cls: type, data: Any, where: str, base: Any = None) -> Any:
    """cls from a mapping, strictly. Keys the mapping leaves out keep the value they have in `base` (the
    section's own default: a judge's `sampling` starts from the judge's greedy defaults, not from the models'),
    so a partial override is merged key by key at every level."""
    if dataclasses.is_dataclass(data):
        return data
    if cls is BenchmarkSpec and isinstance(data, str):
        data = {"name": data}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    if not isinstance(base, cls):
        base = cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            raise ConfigError(f"unknown config key '{path}'{suggest(str(key), list(fields))}")
        kwargs[key] = _coerce(hints[key], value, path, getattr(base, key))
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
            raise ConfigError(f"config key '{path}': expected a mapping, got {value!r}")
        return dict(value)
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"config key '{path}': expected a list, got {value!r}")
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
            raise ConfigError(f"config key '{path}': expected {tp.__name__}, got {value!r}")
        return value
    return value


def to_plain(cfg: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set data[a][b][c] for 'a.b.c'; list items by index or, for models, by model name."""
    parts = dotted.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            idx = _list_index(node, part, dotted)
            if last:
                node[idx] = value
                return
            node = node[idx]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: '{'.'.join(parts[:i])}' is not a mapping")
        if last:
            node[part] = value
            return
        if part not in node or node[part] is None:
            node[part] = {}
        elif isinstance(node[part], str) and part == "benchmark":
            node[part] = {"name": node[part]}
        node = node[part]


def _list_index(node: list[Any], part: str, dotted: str) -> int:
    if part.isdigit() and int(part) < len(node):
        return int(part)
    for idx, item in enumerate(node):
        if isinstance(item, dict) and item.get("name") == part:
            return idx
    names = [str(item.get("name")) for item in node if isinstance(item, dict)]
    raise ConfigError(f"--set {dotted}: no list item '{part}'{suggest(part, names)}")


def parse_overrides(items: list[str] | tuple[str, ...]) -> list[tuple[str, Any]]:
    out = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        out.append((key.strip(), yaml.safe_load(raw) if raw.strip() else ""))
    return out


def load_config(path: Path | None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a YAML config (or the built-in quickstart when path is None) and apply --set overrides."""
    if path is None:
        from lima_eval.resources import default_config_path

        path = default_config_path()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: not valid YAML") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for key, value in parse_overrides(overrides):
        _set_path(data, key, value)
    cfg = build_section(RunConfig, data, "")
    validate(cfg)
    return cfg


def from_resolved(data: dict[str, Any], where: str = "config.yaml") -> RunConfig:
    """A run's resolved config (as written to RUN/config.yaml) back as a validated RunConfig."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    cfg = build_section(RunConfig, data, "")
    validate(cfg)
    return cfg


def attach_sft(cfg: RunConfig) -> None:
    """Make the SFT output a model of the run: fill in its folder and recipe revision."""
    if cfg.sft is None:
        return
    from lima_eval.sft.train import recipe_hash

    if not cfg.sft.base:
        raise ConfigError("config key 'sft.base' is missing (the pre-trained model to fine-tune)")
    if not cfg.sft.out:
        cfg.sft.out = str(cfg.run_dir / "sft" / cfg.sft.name)
    names = [m.name for m in cfg.models]
    if cfg.sft.name not in names:
        cfg.models.insert(0, ModelSpec(name=cfg.sft.name, backend="hf", model=cfg.sft.out))
    spec = cfg.model(cfg.sft.name)
    spec.backend, spec.model, spec.revision = "hf", cfg.sft.out, recipe_hash(cfg.sft)


def validate(cfg: RunConfig) -> None:
    attach_sft(cfg)
    names = [m.name for m in cfg.models]
    if not cfg.models:
        raise ConfigError("config: 'models' is empty; name at least a model under test and a baseline")
    for i, m in enumerate(cfg.models):
        if not m.name:
            raise ConfigError(f"config key 'models.{i}.name' is missing")
        if not m.model:
            raise ConfigError(f"config key 'models.{i}.model' is missing (a path, HF id or embedded:NAME)")
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError(f"config: model names must be unique; repeated: {', '.join(sorted(dupes))}")
    if not cfg.baselines and not cfg.round_robin:
        raise ConfigError("config: 'baselines' is empty; name the model(s) to compare against")
    for b in cfg.baselines:
        if b not in names:
            raise ConfigError(f"config key 'baselines': '{b}' is not a model in 'models'{suggest(b, names)}")
    if not cfg.pairs() and not all(m.backend == "imported" for m in cfg.models):  # imports may pair a model with itself
        raise ConfigError("config: every model is a baseline; leave at least one model under test")
    for i, j in enumerate(cfg.all_judges()):
        where = "judge" if i == 0 else f"judges.{i - 1}"
        if j.order not in ("random", "both"):
            raise ConfigError(f"config key '{where}.order': '{j.order}' is not one of random, both")
        if j.combine not in ("tie", "separate"):
            raise ConfigError(f"config key '{where}.combine': '{j.combine}' is not one of tie, separate")
    if not cfg.name or "/" in cfg.name or cfg.name.startswith("."):
        raise ConfigError(f"config key 'name': '{cfg.name}' must be a plain directory name")
