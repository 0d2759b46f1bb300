"""Typed run config: defaults < YAML < --set overrides; unknown keys are errors that name the key.

The schema (`schema`: the dataclasses and how plain data becomes them), the whole-config checks (`checks`) and
the reading of YAML files, overrides and resolved configs (`loading`) live apart; every name is importable from
`lima_eval.config` as before.
"""

from lima_eval.config.checks import (
    JUDGE_BOUNDS,
    ORDERS,
    needs_model,
    plain_name,
    shard_of,
    validate,
    validate_judge,
)
from lima_eval.config.loading import (
    _line_of,
    _set_path,
    apply_overrides,
    from_resolved,
    load_config,
    parse_overrides,
    with_sft,
)
from lima_eval.config.schema import (
    IMPORTED,
    RANGES,
    BenchmarkSpec,
    ContaminationSpec,
    Endpoint,
    JudgeSpec,
    ModelSpec,
    RunConfig,
    Sampling,
    SFTSection,
    StopRule,
    backend_options,
    build_section,
    check_range,
    family_of,
    identity_option,
    to_plain,
)

__all__ = [
    "IMPORTED", "JUDGE_BOUNDS", "ORDERS", "RANGES", "BenchmarkSpec", "ContaminationSpec", "Endpoint", "JudgeSpec",
    "ModelSpec", "RunConfig", "SFTSection", "Sampling", "StopRule", "_line_of", "_set_path", "apply_overrides",
    "backend_options", "build_section", "check_range", "family_of", "from_resolved", "identity_option", "load_config",
    "needs_model", "parse_overrides", "plain_name", "shard_of", "to_plain", "validate", "validate_judge", "with_sft",
]
