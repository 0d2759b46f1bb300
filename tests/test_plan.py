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


def alpaca_pilot(tmp_path, prefs):
    """A pilot run imported from an AlpacaEval-format file: prefs[model] lists its preference per prompt against
    `base` (1 the baseline wins, 2 the model wins)."""
    rows = [{"instruction": f"Instruction {i}", "output_1": "b", "generator_1": "base", "output_2": "m",
             "generator_2": model, "annotator": "j", "preference": p}
            for model, ps in prefs.items() for i, p in enumerate(ps)]
    (tmp_path / "pilot.json").write_text(json.dumps(rows))
    import_judgments(tmp_path / "pilot", tmp_path / "pilot.json", "alpaca-eval")
    return tmp_path / "pilot"


def test_a_small_pilot_never_asks_beyond_the_most_spread_there_is(tmp_path):
    """Ten prompts split evenly: the sample sd is 0.5 * sqrt(10 / 9) = 0.527, which asked for 873 prompts, more
    than the 785 the most spread a score can have needs. One model: the paired line is the default and says so,
    and separability says why it is absent."""
    pilot = alpaca_pilot(tmp_path, {"ckpt": [1.0, 2.0] * 5})
    plan = make_plan(0.05, pilot=pilot)
    assert (plan.sd_single, plan.single) == (0.5, 785)
    assert (plan.sd_paired, plan.paired) == (0.5, 785) and plan.separability == {}
    out = run_cli("plan", "--pilot", str(pilot))
    assert out.returncode == 0, out.stderr
    single, paired, sep = out.stdout.splitlines()[1:]
    assert single.startswith("  model vs baseline (win rate 0.55 vs 1/2): 785 prompts (score sd 0.500, capped")
    assert "sample sd 0.527" in single
    assert paired == ("  two models vs one baseline, paired: 785 prompts (paired-difference sd 0.500, the default, "
                      "as no two models in the pilot are judged against one baseline by one judge)")
    assert sep == "  separability: n/a, as no two models in the pilot are judged against one baseline by one judge"
    notes = json.loads(run_cli("plan", "--pilot", str(pilot), "--json").stdout)["notes"]
    assert set(notes) == {"single", "paired", "separability"}


def test_a_paired_spread_is_capped_at_that_of_a_difference(tmp_path):
    """Two models that disagree on every prompt: differences of +-1 have sample sd sqrt(4/3) on four prompts,
    above the most a difference of two scores in [0, 1] can spread (1): the plan uses 1, four times the default's
    prompts (the default assumes the two models' scores correlate by 1/2, docs/plan.md)."""
    pilot = alpaca_pilot(tmp_path, {"ckpt": [2.0, 2.0, 1.0, 1.0], "other": [1.0, 1.0, 2.0, 2.0]})
    plan = make_plan(0.05, pilot=pilot)
    assert (plan.sd_paired, plan.paired) == (1.0, prompts_needed(0.05, 1.0)) and plan.paired == 3140
    assert plan.notes["paired"].startswith("capped")
    assert "separability" not in plan.notes and len(plan.separability) == 1


def test_soft_scores_near_one_half_plan_on_the_verdicts_spread(tmp_path):
    """A judge whose soft preferences sit just either side of 1/2 (1.45 / 1.55) while its verdicts split: the
    scores' sd (0.053) planned 9 prompts; the verdicts' spread (win 1, loss 0) is what the plan must hold for."""
    pilot = alpaca_pilot(tmp_path, {"ckpt": [1.45, 1.55] * 5})
    plan = make_plan(0.05, pilot=pilot)
    assert plan.sd_single == 0.5 and plan.single == 785
    assert "verdicts' spread" in plan.notes["soft"]
    out = run_cli("plan", "--pilot", str(pilot))
    assert out.returncode == 0, out.stderr
    assert "  note: the judge's soft scores spread less than its verdicts" in out.stdout


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
