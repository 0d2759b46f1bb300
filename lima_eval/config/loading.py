"""Reading a run config: YAML (hostile structure refused), --set overrides, the SFT stage attached, and a run's
resolved config.yaml read back; every problem is a ConfigError naming the file, line and key."""

from __future__ import annotations

import copy
import dataclasses
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lima_eval.config.checks import validate
from lima_eval.config.schema import Endpoint, JudgeSpec, ModelSpec, RunConfig, build_section
from lima_eval.errors import ConfigError, InputError, UnknownNameError
from lima_eval.families import guess
from lima_eval.inputs import load_yaml, read_text
from lima_eval.recipe import recipe_hash
from lima_eval.registry import BACKENDS, suggest
from lima_eval.resources import default_config_path


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> str:
    """Set data[a][b][c] for 'a.b.c'; list items by index or, for models, by model name. Returns the key with
    list items by index ('models.mine.model' -> 'models.0.model'), as config errors name it."""
    node, last, canonical = _parent(data, dotted)
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return canonical


def _parent(data: dict[str, Any], dotted: str) -> tuple[Any, str, str]:
    """The mapping or list holding the last part of 'a.b.c' (missing mappings created on the way), that part
    (a list item as its index) and the whole key with list items by index."""
    parts = dotted.split(".")
    node: Any = data
    done: list[str] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            part = str(_list_index(node, part, dotted))
            done.append(part)
            if last:
                return node, part, ".".join(done)
            node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: '{'.'.join(parts[:i])}' is not a mapping")
        done.append(part)
        if last:
            return node, part, ".".join(done)
        if part not in node or node[part] is None:
            node[part] = {}
        elif isinstance(node[part], str) and part == "benchmark":
            node[part] = {"name": node[part]}
        node = node[part]
    raise ConfigError(f"--set expects key=value, got '{dotted}='")  # an empty key: parse_overrides refuses it


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
        out.append((key.strip(), _override_value(key.strip(), raw)))
    return out


def _override_value(key: str, raw: str) -> Any:
    """The YAML value of one --set (hostile structure refused as in a file)."""
    if not raw.strip():
        return ""
    try:
        return load_yaml(raw, f"--set {key}")
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    except yaml.YAMLError:
        raise ConfigError(f"--set {key}: not valid YAML") from None


def load_config(path: Path | None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a YAML config (or the built-in quickstart when path is None) and apply --set overrides."""
    if path is None:
        path = default_config_path()
    try:
        text = read_text(path)
    except InputError as exc:
        raise ConfigError(f"cannot read config {exc}") from None
    try:
        data = load_yaml(text, path) or {}
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: not valid YAML") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    flags = apply_overrides(data, overrides)  # its errors name the flag
    try:
        cfg = with_sft(build_section(RunConfig, data, ""))
        validate(cfg)
    except ConfigError as exc:  # said with the flag that set the key, else the file and the key's line in it
        found = re.search(r"config key '([^']+)'", str(exc))
        flag = _flag_of(found.group(1), flags) if found else None
        if flag is not None:
            raise ConfigError(f"{flag}: {exc}") from None
        at = _line_of(text, found)
        raise ConfigError(f"{path}{f', line {at}' if at else ''}: {exc}") from None
    return cfg


# An endpoint's section (a model, the judge, a further judge, a juror), where --set may switch the backend.
_ENDPOINT = re.compile(r"(judge|judges\.\d+|models\.\d+)(\.jury\.\d+)*")
# Keys every endpoint section takes whatever its backend (never dropped by a switch).
_SHARED = {f.name for cls in (JudgeSpec, ModelSpec) for f in dataclasses.fields(cls)} - {"options"}


@dataclass
class _Switch:
    section: dict[str, Any]
    where: str  # its config path, list items by index
    old: str  # the backend before the first --set of it
    flag: str  # the last --set of it, as typed


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """Apply --set KEY=VALUE items to a config's plain data, in order. Returns, for each, the flag as typed and
    the key it set (list items by index), so that an error can name the flag behind it.

    A --set of a section's `backend` switches it: the old backend's options that came from the file (not from a
    --set) are dropped, said in one note on stderr per switch; options given with --set are checked against the
    new backend. `--set KEY=null` of an option the section's backend does not take removes the key."""
    flags: list[tuple[str, str]] = []
    switches: dict[int, _Switch] = {}
    by_flag: set[tuple[int, str]] = set()
    nulled: list[tuple[dict[str, Any], str]] = []
    for item, (key, value) in zip(overrides, parse_overrides(overrides)):
        node, last, canonical = _parent(data, key)
        flag = f"--set {item if len(item) <= 60 else item[:57] + '...'}"
        where = canonical.rpartition(".")[0]
        if isinstance(node, dict) and _ENDPOINT.fullmatch(where):
            if last == "backend":
                was = switches.get(id(node)) or _Switch(node, where, str(node.get("backend", Endpoint.backend)), flag)
                was.flag, switches[id(node)] = flag, was
            by_flag.add((id(node), last))
            if value is None and last not in _SHARED:
                nulled.append((node, last))
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        flags.append((flag, canonical))
    for switch in switches.values():
        _switch_backend(switch, by_flag)
    for node, key in nulled:
        known = _option_names(str(node.get("backend", Endpoint.backend)))
        if key in node and node[key] is None and known is not None and key not in known:
            del node[key]
    return flags


def _switch_backend(switch: _Switch, by_flag: set[tuple[int, str]]) -> None:
    """Drop the options of a section's old backend that its new one does not take and no --set gave."""
    section = switch.section
    new = str(section.get("backend", Endpoint.backend))
    old_names, new_names = _option_names(switch.old), _option_names(new)
    if new == switch.old or old_names is None or new_names is None:  # an unknown name: the checks say so
        return
    dropped = [k for k in section if k in old_names and k not in new_names and k not in _SHARED
               and (id(section), k) not in by_flag]
    for key in dropped:
        del section[key]
    if dropped:
        what = "an option" if len(dropped) == 1 else "options"
        print(f"note: {switch.flag}: dropped {', '.join(f'{switch.where}.{k}' for k in dropped)} ({what} of "
              f"backend '{switch.old}')", file=sys.stderr, flush=True)


def _option_names(backend: str) -> set[str] | None:
    """The names of a backend's own options; None for a name that is not a backend."""
    try:
        opts_cls = getattr(BACKENDS.load(backend), "Options", None)
    except UnknownNameError:
        return None
    return {f.name for f in dataclasses.fields(opts_cls)} if opts_cls else set()


def _flag_of(key: str, flags: list[tuple[str, str]]) -> str | None:
    """The last --set that set `key` or a section holding it."""
    for flag, canonical in reversed(flags):
        if key == canonical or key.startswith(canonical + "."):
            return flag
    return None


def _line_of(text: str, found: re.Match[str] | None) -> int | None:
    """The line of a dotted config key ('models.0.sampling.top_p') in the YAML text, if it is written there."""
    if found is None:
        return None
    try:
        node: Any = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in found.group(1).split("."):
        if isinstance(node, yaml.MappingNode):
            hit = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if hit is None:
                return line
            line, node = hit[0].start_mark.line + 1, hit[1]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def from_resolved(data: dict[str, Any], where: str = "config.yaml") -> RunConfig:
    """A run's resolved config (as written to RUN/config.yaml) back as a validated RunConfig."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    cfg = build_section(RunConfig, data, "")
    for spec in [*cfg.models, *cfg.all_judges(), *(m for j in cfg.all_judges() for m in j.jury)]:
        _drop_legacy_keys(spec)
    cfg = with_sft(cfg)
    validate(cfg)
    return cfg


# Before backends owned their options, every endpoint in a resolved config carried all of these.
_LEGACY_KEYS = ("dtype", "device", "batch_size", "max_batch_tokens", "base_url", "api_key_env", "timeout",
                "max_retries", "engine", "server_timeout")


def _drop_legacy_keys(spec: Endpoint) -> None:
    opts_cls = getattr(BACKENDS.load(spec.backend), "Options", None)
    known = {f.name for f in dataclasses.fields(opts_cls)} if opts_cls else set()
    spec.options = {k: v for k, v in spec.options.items() if k in known or k not in _LEGACY_KEYS}


def with_sft(cfg: RunConfig) -> RunConfig:
    """A copy of cfg whose models include the SFT output (its folder and recipe revision filled in); cfg itself
    is left as it was."""
    if cfg.sft is None:
        return cfg
    if not cfg.sft.base:
        raise ConfigError("config key 'sft.base' is missing (the pre-trained model to fine-tune)")
    cfg = copy.deepcopy(cfg)
    assert cfg.sft is not None
    if not cfg.sft.out:
        cfg.sft.out = str(cfg.run_dir / "sft" / cfg.sft.name)
    names = [m.name for m in cfg.models]
    if cfg.sft.name not in names:
        cfg.models.insert(0, ModelSpec(name=cfg.sft.name, backend="hf", model=cfg.sft.out))
    spec = cfg.model(cfg.sft.name)
    spec.backend, spec.model, spec.revision = "hf", cfg.sft.out, recipe_hash(cfg.sft)
    if not spec.family:  # a fine-tune is of its base model's family
        spec.family = guess(cfg.sft.base) or guess(spec.name)
    return cfg
