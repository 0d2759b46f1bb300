"""The scripted backend: rule-based replies with no model, registered through the entry points like any
backend, runs every stage of a run end to end."""

import json

import pytest
from conftest import write_config

from lima_eval.backends.base import open_backend
from lima_eval.config import Endpoint, load_config
from lima_eval.errors import ConfigError
from lima_eval.pipeline import run
from lima_eval.registry import BACKENDS

MSG = [{"role": "user", "content": "Name a colour."}]


def test_it_is_registered_like_every_other_backend():
    from importlib.metadata import entry_points

    assert ({"hf", "openai", "vllm", "vllm-server", "scripted"}
            <= {ep.name for ep in entry_points(group="lima_eval.backends")})
    assert BACKENDS.target("scripted") == "lima_eval.backends.scripted:ScriptedBackend"


@pytest.mark.parametrize("rule,expected", [
    ("echo", "Name a colour."),
    ("fixed:Verdict: A", "Verdict: A"),
])
def test_rules(rule, expected):
    with open_backend(Endpoint(backend="scripted", model=rule)) as backend:
        (out,) = backend.generate([MSG])
    assert out.text == expected and out.error is None and backend.calls == 1


def test_cycle_is_stable_per_request_and_uses_every_text():
    with open_backend(Endpoint(backend="scripted", model="cycle:x|y|z")) as backend:
        requests = [[{"role": "user", "content": f"q{i}"}] for i in range(30)]
        first, again = backend.generate(requests), backend.generate(requests)
    assert [c.text for c in first] == [c.text for c in again]
    assert {c.text for c in first} == {"x", "y", "z"}


@pytest.mark.parametrize("rule", ["", "fixed", "fixed:", "cycle:", "sometimes"])
def test_bad_rules_name_the_choices(rule):
    with pytest.raises(ConfigError, match="is not a rule; use one of echo, fixed:TEXT"):
        open_backend(Endpoint(backend="scripted", model=rule or "x:"))


def test_a_whole_run_on_scripted_models_and_judge(tmp_path, prompts_file):
    """A judge that always says A (the answer shown first) is judged in both orders: every pair ties."""
    cfg = load_config(write_config(tmp_path / "c.yaml", {
        "name": "s", "output_dir": str(tmp_path / "results"), "benchmark": {"name": "file", "path": str(prompts_file)},
        "models": [{"name": "mine", "backend": "scripted", "model": "echo"},
                   {"name": "base", "backend": "scripted", "model": "fixed:ok"}],
        "baselines": ["base"],
        "judge": {"backend": "scripted", "model": "fixed:Verdict: A"},
    }))
    result = run(cfg, show_progress=False)
    assert (result.generations.new, result.judgments.new) == (12, 12)
    (row,) = json.loads((result.report_dir / "summary.json").read_text())["rows"]
    assert (row["n"], row["tie"], row["errors"]) == (6, 6, 0)
    assert "no clear difference" in json.loads((result.report_dir / "summary.json").read_text())["conclusions"][0]
