"""Checks of a whole run config beyond one key's type: models and baselines, judges and juries, names that
become folder names, shards."""

from __future__ import annotations

import re

from lima_eval.config.schema import IMPORTED, JudgeSpec, RunConfig, backend_options
from lima_eval.errors import ConfigError
from lima_eval.inputs import shown
from lima_eval.registry import suggest


def validate(cfg: RunConfig) -> None:
    """Check a config (SFT already attached by with_sft); raises ConfigError naming the key, changes nothing."""
    names = [m.name for m in cfg.models]
    if not cfg.models:
        raise ConfigError("config: 'models' is empty; name at least a model under test and a baseline")
    for i, m in enumerate(cfg.models):
        if not m.name:
            raise ConfigError(f"config key 'models.{i}.name' is missing")
        if not m.model and not m.imported:  # an imported model's answers come from a file: it needs no model
            raise ConfigError(f"config key 'models.{i}.model' is missing (a path, HF id or embedded:NAME)")
        backend_options(m, f"models.{i}")
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError(f"config: model names must be unique; repeated: {', '.join(sorted(dupes))}")
    if not cfg.baselines and not cfg.round_robin:
        raise ConfigError("config: 'baselines' is empty; name the model(s) to compare against")
    for b in cfg.baselines:
        if b not in names:
            raise ConfigError(f"config key 'baselines': '{b}' is not a model in 'models'{suggest(b, names)}")
    if not cfg.pairs() and not all(m.imported for m in cfg.models):  # imports may pair a model with itself
        raise ConfigError("config: every model is a baseline; leave at least one model under test")
    for i, j in enumerate(cfg.all_judges()):
        validate_judge(j, "judge" if i == 0 else f"judges.{i - 1}")
    if cfg.benchmark.shard is not None:
        shard_of(cfg.benchmark.shard, "benchmark.shard")
    plain_name(cfg.name, "name")
    if cfg.sft is not None:
        plain_name(cfg.sft.name, "sft.name")
    for key, value in [*((f"models.{i}.name", m.name) for i, m in enumerate(cfg.models)),
                       *((f"baselines.{i}", b) for i, b in enumerate(cfg.baselines))]:
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ConfigError(f"config key '{key}': {shown(value)} has a control character")


ORDERS = ("both", "random", "both-if-close")
# Bounds on a judge's quality: a judge section's `require:` and `lima-eval check` rules take the same keys.
JUDGE_BOUNDS = ("min_judge_kappa", "max_position_bias", "max_flip_rate")


def validate_judge(j: JudgeSpec, where: str = "judge") -> None:
    """Check one judge section (a jury with its jurors); raises ConfigError naming the key at `where`."""
    if j.jury:
        _validate_jury(j, where)
    else:
        backend_options(j, where)
    if j.order not in ORDERS:
        raise ConfigError(f"config key '{where}.order': '{j.order}' is not one of {', '.join(ORDERS)}")
    for key, on in (("order", j.order == "both-if-close"), ("stop_when_decided", j.stop_when_decided is not None)):
        if on and j.jury:
            raise ConfigError(f"config key '{where}.{key}': adaptive judging is not built for juries yet; set it "
                              "off (docs/adaptive.md)")
    if j.stop_when_decided is not None and not j.stop_when_decided.confidence < 1:
        raise ConfigError(f"config key '{where}.stop_when_decided.confidence': "
                          f"{shown(j.stop_when_decided.confidence)} is out of range (must be > 0 and < 1)")
    rules = ("majority", "mean-probability") if j.jury else ("tie", "separate")
    if j.combine and j.combine not in rules:
        raise ConfigError(f"config key '{where}.combine': '{j.combine}' is not one of {', '.join(rules)}"
                          + (" (a jury combines its jurors' verdicts)" if j.jury else ""))
    bounds = list(JUDGE_BOUNDS)
    for bound, limit in j.require.items():
        if bound not in bounds:
            raise ConfigError(f"config key '{where}.require.{bound}': not one of {', '.join(bounds)}"
                              f"{suggest(str(bound), bounds)}")
        if isinstance(limit, bool) or not isinstance(limit, (int, float)):
            raise ConfigError(f"config key '{where}.require.{bound}': expected a number, got {shown(limit)}")


def _validate_jury(j: JudgeSpec, where: str) -> None:
    """A jury names two or more jurors, each a plain judge on its own endpoint; the jury itself has none."""
    if len(j.jury) < 2:
        raise ConfigError(f"config key '{where}.jury': a jury needs at least two jurors, got {len(j.jury)}")
    if j.model or j.options or j.family:
        key = "model" if j.model else "family" if j.family else min(j.options)
        raise ConfigError(f"config key '{where}.{key}': a jury has no endpoint of its own; set it on each juror "
                          f"({where}.jury.N.{key})")
    if j.abstain_below >= 1:
        raise ConfigError(f"config key '{where}.abstain_below': {shown(j.abstain_below)} is out of range (must be < 1)")
    for k, m in enumerate(j.jury):
        at = f"{where}.jury.{k}"
        if m.jury:
            raise ConfigError(f"config key '{at}.jury': a juror cannot be a jury itself")
        for key in _JURY_ONLY:
            if getattr(m, key) != _JUDGE_DEFAULTS[key]:
                raise ConfigError(f"config key '{at}.{key}': a juror takes the jury's {key}; set it on the jury "
                                  f"({where}.{key})" + (" where the jury allows it (docs/juries.md)"
                                                         if key in ("stop_when_decided", "close_below") else ""))
        needs_model(m, at)
        backend_options(m, at)
        if m.combine and m.combine not in ("tie", "separate"):
            raise ConfigError(f"config key '{at}.combine': '{m.combine}' is not one of tie, separate")


# Keys of a judge section that belong to the jury as a whole: a juror setting its own would be ignored or, for
# adaptive judging, run where juries refuse it.
_JURY_ONLY = ("order", "close_below", "stop_when_decided", "require", "abstain", "abstain_below")
_JUDGE_DEFAULTS = {key: getattr(JudgeSpec(), key) for key in _JURY_ONLY}


def needs_model(j: JudgeSpec, where: str) -> None:
    """A judge (or juror) runs on a model: without one, a run would generate its answers and then fail. Checked
    where a judge is about to be used (a juror's always: it is written out), since a config that only imports
    labels may leave its judge unset."""
    if not j.model.strip() and j.backend != IMPORTED:
        raise ConfigError(f"config key '{where}.model' is missing (the judge's model: an API model name, a path, "
                          "an HF id or embedded:NAME; or a jury: of two or more jurors)")


def shard_of(value: str, key: str = "--shard") -> tuple[int, int]:
    """(i, N) of "i/N" with 1 <= i <= N; a ConfigError naming the key otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(value))
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ConfigError(f"config key '{key}': {shown(value)} is not a shard i/N with 1 <= i <= N (e.g. 2/3)")
    return int(m.group(1)), int(m.group(2))


def plain_name(value: str, key: str) -> None:
    """Names that become folder names (the run, the SFT model) stay inside their folder: one plain path part."""
    bad = not value or value in (".", "..") or value.startswith(".") or any(c in value for c in "/\\:")
    if bad or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ConfigError(f"config key '{key}': {shown(value)} must be a plain folder name (no /, \\, :, leading dot "
                          "or control characters)")
