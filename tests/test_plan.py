"""Sample-size planning (`lima-eval plan`): the closed form, a pilot run of real AlpacaEval labels, bad input."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import pytest
from conftest import assert_one_line_error, run_cli

from lima_eval.judging.foreign import import_judgments
from lima_eval.plan import make_plan, prompts_needed


def test_the_closed_form():
    # ((1.95996 + 0.84162) * 0.5 / 0.05) ** 2 = 784.9: 785 prompts for five points at 80% power.
    assert prompts_needed(0.05, 0.5) == 785
    z = NormalDist().inv_cdf(0.995) + NormalDist().inv_cdf(0.9)
    assert prompts_needed(0.1, 0.4, power=0.9, level=0.99) == math.ceil((z * 0.4 / 0.1) ** 2)
    assert prompts_needed(0.05, 0.25) < prompts_needed(0.05, 0.5)  # less spread, fewer prompts
    plan = make_plan(0.05)
    assert (plan.single, plan.paired, plan.source) == (785, 785, "default")


def test_a_pilot_run_of_real_labels(shared_data, tmp_path):
    """Three AlpacaEval 2 models against GPT-4 Turbo: the pilot's spreads are those of its per-prompt scores, and
    claude-2 separates from both weaker models (alpaca-7b and vicuna-13b overlap or not, as their intervals say)."""
    run = tmp_path / "pilot"
    for model in ("alpaca-7b", "claude-2", "vicuna-13b"):
        import_judgments(run, shared_data / f"alpaca_eval/results/{model}/weighted_alpaca_eval_gpt4_turbo/"
                         "annotations.json", "alpaca-eval")
    out = run_cli("plan", "--effect", "0.05", "--pilot", str(run), "--json")
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert 0 < plan["sd_single"] < 0.5 and 0 < plan["sd_paired"] < 0.6
    assert plan["single"] == prompts_needed(0.05, plan["sd_single"])
    assert plan["paired"] == prompts_needed(0.05, plan["sd_paired"])
    (sep,) = plan["separability"].values()
    assert sep["models"] == 3 and sep["pairs"] == 3 and sep["separable"] >= 2
    text = run_cli("plan", "--pilot", str(run))
    assert "separability" in text.stdout and "prompts" in text.stdout


@pytest.mark.parametrize("args,message", [
    (["--effect", "0"], "--effect: 0.0 is out of range"),
    (["--effect", "0.7"], "--effect: 0.7 is out of range"),
    (["--power", "1"], "--power: 1.0 is out of range"),
    (["--level", "0"], "--level: 0.0 is out of range"),
    (["--pilot", "/nowhere"], "not a lima-eval run directory"),
])
def test_bad_plans_are_named(args, message):
    out = run_cli("plan", *args)
    assert_one_line_error(out, message)
