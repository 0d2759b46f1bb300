"""Kinds of `lima-eval check` rules as classes in a registry: the built-ins own their keys, and a rule from a
plugin installed as a real distribution (a package plus its .dist-info with an entry point on the path) gates
a run end to end like a built-in."""

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
import yaml
from conftest import REPO, assert_one_line_error

from lima_eval.check import CheckInputError, read_rules
from lima_eval.check_rules import CheckRule, rule_kind
from lima_eval.cli import main
from lima_eval.registry import CHECK_RULES

BUILT_IN = {"min_win_rate", "max_drop", "max_fail_share", "min_safe_rate", "max_contamination",
            "min_judge_kappa", "max_position_bias", "max_flip_rate"}

PLUGIN = '''
"""A check rule plugin: `max_errors: N`, at most N of a model's pairwise judgments failed (no verdict)."""
from lima_eval.check_rules import CheckRule, Result, known_model
from lima_eval.errors import CheckInputError


class MaxErrors(CheckRule):
    name = "max_errors"
    keys = frozenset({"model", "judge"})

    def threshold(self, value, where):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CheckInputError(f"{where}: expected a count (a whole number, 0 or more), got {value!r}")
        return float(value)

    def evaluate(self, rule, new, old, level):
        known_model(new, rule.model)
        mine = [j for j in new.judgments
                if rule.model in (j.model_a, j.model_b) and rule.judge in (None, j.judge)]
        errors = sum(j.error is not None for j in mine)
        return Result(rule, new.name, errors <= rule.threshold, errors, errors, errors, len(mine),
                      judge=rule.judge or "", detail=f"{errors} of {len(mine)} judgments failed", level=level)

    def describe(self, result):
        return f"pairwise errors of {result.rule.model} <= {result.rule.threshold:g}"

    def show(self, value):
        return str(int(value))


class NotARule:
    pass
'''

ENTRY_POINTS = """
[lima_eval.check_rules]
max_errors = errorrule:MaxErrors
not_a_rule = errorrule:NotARule
not_there = errorrule:Missing
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder laid out as pip lays out an installed distribution."""
    site = tmp_path_factory.mktemp("site")
    (site / "errorrule").mkdir()
    (site / "errorrule" / "__init__.py").write_text(PLUGIN)
    info = site / "errorrule-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: errorrule\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS))
    return site


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run whose judge fails to give a verdict on some judgments (a reply with no 'Verdict:' line)."""
    root = tmp_path_factory.mktemp("run")
    (root / "p.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Question {i}?"}) + "\n"
                                          for i in range(12)))
    config = {"name": "r", "output_dir": str(root / "results"),
              "benchmark": {"name": "file", "path": str(root / "p.jsonl")},
              "models": [{"name": "mine", "backend": "scripted", "model": "echo"},
                         {"name": "base", "backend": "scripted", "model": "fixed:ok"}],
              "baselines": ["base"],
              "judge": {"backend": "scripted", "model": "cycle:Verdict: A|Verdict: B|I cannot tell",
                        "order": "random", "cache_path": str(root / "cache.sqlite")}}
    (root / "c.yaml").write_text(yaml.safe_dump(config))
    try:
        main(["run", str(root / "c.yaml"), "--no-progress"])
    except SystemExit as exc:
        assert not exc.code
    return root / "results" / "r"


def errors_of(run_dir, model):
    lines = (run_dir / "judgments.jsonl").read_text().splitlines()
    return sum(1 for j in map(json.loads, lines) if model in (j["model_a"], j["model_b"]) and j["error"])


def check(site, run_dir, tmp_path, rules):
    path = tmp_path / "rules.yaml"
    path.write_text(rules)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    args = ["check", str(run_dir), "--rules", str(path), "--json", str(tmp_path / "r.json")]
    out = subprocess.run([sys.executable, "-m", "lima_eval.cli", *args], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    return out, path


def test_every_built_in_rule_is_a_check_rule_named_by_its_key():
    assert BUILT_IN <= set(CHECK_RULES.names())
    for name in BUILT_IN:
        kind = rule_kind(name)
        assert isinstance(kind, CheckRule) and kind.name == name and name not in kind.keys


def test_a_plugin_rule_gates_a_run_end_to_end(site, run_dir, tmp_path):
    errors = errors_of(run_dir, "mine")
    assert 0 < errors < 12, "the scripted judge should fail on some judgments, not all"
    held, _ = check(site, run_dir, tmp_path, f"rules:\n  - {{model: mine, max_errors: {errors}}}\n"
                                             "  - {model: mine, min_win_rate: 0.0}\n")
    assert held.returncode == 0, held.stdout + held.stderr
    cells = next(re.split(r"\s{2,}", x) for x in held.stdout.splitlines() if "pairwise errors" in x)
    interval = f"[{errors}.0000, {errors}.0000]"
    assert cells == ["ok", f"pairwise errors of mine <= {errors}", str(errors), interval, "12"]
    result = json.loads((tmp_path / "r.json").read_text())[0]
    assert result["rule"] == "max_errors" and result["value"] == errors and result["n"] == 12
    failed, _ = check(site, run_dir, tmp_path, f"rules:\n  - {{model: mine, max_errors: {errors - 1}}}\n")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert failed.stdout.splitlines()[2].startswith("FAILED") and "1 of 1 rule(s) failed" in failed.stderr


@pytest.mark.parametrize("rule,message", [
    ("{model: mine, max_errors: lots}",
     "rules[0], max_errors: expected a count (a whole number, 0 or more), got 'lots'"),
    ("{model: mine, max_errors: 1.5}", "rules[0], max_errors: expected a count"),
    ("{model: mine, max_errors: -1}", "rules[0], max_errors: expected a count"),
    ("{max_errors: 1}", "rules[0]: 'model' is missing"),
    ("{model: mine, max_errors: 1, baseline: base}",
     "rules[0]: unknown key(s) baseline for max_errors; it takes judge, max_errors, model"),
    ("{model: mine, max_eror: 1}", "rules[0]: unknown key(s) max_eror (did you mean 'max_errors'?)"),
    ("{model: mine, max_errors: 1, min_win_rate: 0.5}", "rules[0]: give exactly one of"),
    ("{model: ghost, max_errors: 1}", "no model 'ghost'"),
    ("{not_a_rule: 1}", "rules[0]: check rule 'not_a_rule' (errorrule:NotARule) is not a CheckRule subclass"),
    ("{not_there: 1}", "rules[0]: check rule 'not_there' (errorrule:Missing) cannot be loaded"),
])
def test_bad_plugin_rules_exit_2_naming_the_file_and_key(site, run_dir, tmp_path, rule, message):
    out, path = check(site, run_dir, tmp_path, f"rules:\n  - {rule}\n")
    assert out.returncode == 2
    assert_one_line_error(out, message)
    if "ghost" not in rule:  # a rule that reads well but names what the run lacks is said with the run's path
        assert str(path) in out.stderr


@pytest.mark.parametrize("rule,message", [
    ("{model: m, min_win_rat: 0.5}", "rules[0]: unknown key(s) min_win_rat (did you mean 'min_win_rate'?)"),
    ("{model: m, max_drop: 0.1, basline: b}",
     "unknown key(s) basline for max_drop (did you mean 'baseline'?)"),
    ("{model: m, max_fail_share: 0.1, metric: win_rate}", "unknown key(s) metric for max_fail_share"),
    ("{model: m, min_win_rate: 0.5, old_model: n}", "unknown key(s) old_model for min_win_rate"),
    ("{max_contamination: 0.1, model: m}",
     "unknown key(s) model for max_contamination; it takes max_contamination"),
    ("{min_judge_kappa: 0.4, model: m}", "unknown key(s) model for min_judge_kappa"),
    ("{model: m}", "rules[0]: give exactly one of "),
    ("{min_safe_rate: 0.9}", "rules[0]: 'model' is missing"),
    ("{model: m, max_drop: 0.1, metric: accuracy}", "rules[0], metric: 'accuracy' is not one of"),
    ("{model: m, max_fail_share: [1]}", "rules[0], max_fail_share: expected a number, got [1]"),
    ("{model: m, min_win_rate: 0.5, 7: x}", "unknown key(s) 7 for min_win_rate"),
    ("[min_win_rate, 0.5]", "rules[0]: expected a mapping"),
])
def test_each_built_in_rule_owns_its_keys(tmp_path, rule, message):
    path = tmp_path / "rules.yaml"
    path.write_text(f"rules:\n  - {rule}\n")
    with pytest.raises(CheckInputError) as err:
        read_rules(path)
    assert str(err.value).startswith(f"{path}, rules[0]") and message in str(err.value)


def test_a_rules_entry_becomes_its_kinds_rule(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n"
                    "  - {model: m, old_model: n, max_drop: 0.05, metric: equal_or_better, strict: true}\n"
                    "  - {max_flip_rate: 0.2, judge: j}\n")
    drop, flips = read_rules(path).rules
    assert (drop.kind, drop.threshold, drop.model, drop.old_model, drop.metric, drop.strict) == \
        ("max_drop", 0.05, "m", "n", "equal_or_better", True)
    assert (flips.kind, flips.threshold, flips.model, flips.judge, flips.strict) == \
        ("max_flip_rate", 0.2, "", "j", False)
