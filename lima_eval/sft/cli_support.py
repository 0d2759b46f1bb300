"""Build an SFTConfig from `lima-eval sft` flags with the same strict key checking as run configs."""

from __future__ import annotations

from lima_eval.config import build_section, parse_overrides
from lima_eval.recipe import SFTConfig


def sft_config_from(base: str, data: str, out: str, overrides: tuple[str, ...] | list[str]) -> SFTConfig:
    values: dict = {"base": base, "data": data, "out": out}
    for key, value in parse_overrides(overrides):
        values[key] = value
    cfg = build_section(SFTConfig, values, "sft")
    assert isinstance(cfg, SFTConfig)
    return cfg
