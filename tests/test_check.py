"""Regression gates: `lima-eval check` and the pytest plugin, on real imported labels and on synthetic runs
with a known effect. Every exit code path."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_cli

from lima_eval.check import CheckInputError, assert_no_regression, assert_win_rate, load_run
from lima_eval.judging.foreign import import_judgments

AE2 = "alpaca_eval/results/{}/weighted_alpaca_eval_gpt4_turbo/annotations.json"


def synthetic_run(root: Path, name: str, p_win: float, seed: int, n: int = 400, model: str = "ckpt") -> Path:
    """A run of n prompts where `model` beats the baseline with probability p_win (10% ties), imported from
    an AlpacaEval-format file written here."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        tie = rng.random() < 0.1
        pref = 1.5 if tie else (2.0 if rng.random() < p_win else 1.0)
        rows.append({"instruction": f"Instruction number {i}", "output_1": "base answer", "generator_1": "base",
                     "output_2": "model answer " + "x" * int(rng.integers(0, 40)), "generator_2": model,
                     "annotator": "synthetic_judge", "preference": pref})
    path = root / f"{name}.json"
    path.write_text(json.dumps(rows))
    import_judgments(root / name, path, "alpaca-eval")
    return root / name


@pytest.fixture
def runs(tmp_path):
    return {
        "good": synthetic_run(tmp_path, "good", 0.60, seed=1),
        "noise": synthetic_run(tmp_path, "noise", 0.60, seed=2),  # the same model, other samples
        "worse": synthetic_run(tmp_path, "worse", 0.35, seed=3),  # a clear regression
    }


def test_noise_passes_and_a_clear_regression_fails(runs):
    ok = run_cli("check", str(runs["noise"]), "--against", str(runs["good"]))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok" in ok.stdout and "all 1 rule(s) hold" in ok.stderr
    bad = run_cli("check", str(runs["worse"]), "--against", str(runs["good"]), "--max-drop", "0.05")
    assert bad.returncode == 1
    line = next(x for x in bad.stdout.splitlines() if x.startswith("FAILED"))
    assert "drop in win_rate of ckpt vs base [alpaca-eval:synthetic_judge] <= 0.050" in line
    # The drop in words, a positive size (a signed -0.19 next to '<= 0.050' read as passing), its paired
    # interval likewise, and the shared prompts.
    assert re.search(r"<= 0\.050  dropped 0\.\d{4}  dropped 0\.\d{4} to 0\.\d{4}  400$", line.rstrip()), line
    assert "-0." not in line
    assert "1 of 1 rule(s) failed" in bad.stderr


def test_paired_interval_is_narrower_than_unpaired(runs):
    """Pairing matters: the same prompts in both runs share their difficulty."""
    r = assert_no_regression(runs["noise"], runs["good"], model="ckpt", max_drop=0.05)
    assert r.low < r.value < r.high and r.n == 400
    assert "shared prompts" in r.detail


def test_rules_file_and_json_output(runs, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"against: {runs['good']}\nrules:\n"
                     "  - {model: ckpt, max_drop: 0.05}\n"
                     "  - {model: ckpt, baseline: base, min_win_rate: 0.5}\n"
                     "  - {model: ckpt, min_win_rate: 0.5, strict: true}\n"
                     "  - {model: ckpt, metric: equal_or_better, min_win_rate: 0.95}\n")
    out = run_cli("check", str(runs["noise"]), "--rules", str(rules), "--json", str(tmp_path / "r.json"))
    results = json.loads((tmp_path / "r.json").read_text())
    assert [r["passed"] for r in results] == [True, True, True, False]
    assert out.returncode == 1 and out.stdout.count("FAILED") == 1
    eob = results[3]
    assert eob["ci_high"] < 0.95 and eob["ci_low"] <= eob["value"] <= eob["ci_high"]
    drop = results[0]  # value and interval stay the signed change new - old; the shown text says it in words
    assert drop["ci_low"] < drop["value"] < drop["ci_high"]
    assert drop["shown_value"] == f"{'dropped' if drop['value'] < 0 else 'rose'} {abs(drop['value']):.4f}"
    assert drop["shown_interval"] == f"dropped {-drop['ci_low']:.4f} to rose {drop['ci_high']:.4f}"
    assert drop["shown_interval"] in out.stdout


def test_position_bias_on_imported_runs_says_what_is_missing(runs, tmp_path):
    """AlpacaEval's files do not say which answer the judge saw first: the error says so, not 'name the judge
    (one of: (none))'; MT-bench's g1/g2 do, and the rule measures them as the report's judge card does."""
    rules = tmp_path / "bias.yaml"
    rules.write_text("rules:\n  - {max_position_bias: 0.1}\n")
    out = run_cli("check", str(runs["good"]), "--rules", str(rules))
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip() == (
        f"error: {runs['good']}, max_position_bias: no model judge with order data in this run; the judgments "
        "of alpaca-eval:synthetic_judge are imported and carry no order information (their file does not say "
        "which answer was shown first)")
    rules.write_text("rules:\n  - {min_judge_kappa: 0.4, judge: alpaca-eval:synthetic_judge}\n")
    out = run_cli("check", str(runs["good"]), "--rules", str(rules))
    assert out.returncode == 2 and "no judge card to read: this run has no model judge" in out.stderr
    assert "one of: (none)" not in out.stderr
    rules.write_text("rules:\n  - {max_position_bias: 0.1}\n")
    mt = run_cli("check", str(mt_bench_run(tmp_path, "mt", range(1, 30))), "--rules", str(rules))
    # g1 always prefers the first-shown answer, g2 calls it a tie: every decisive verdict went to the first shown
    assert mt.returncode == 1, mt.stdout + mt.stderr
    assert "position bias |first-shown - 1/2| of [mt-bench:gpt-4-pair-v2] <= 0.100  0.5000" in mt.stdout


def test_real_alpaca_eval_labels_as_old_and_new(shared_data, tmp_path):
    for model in ("alpaca-7b", "claude-2"):
        import_judgments(tmp_path / model, shared_data / AE2.format(model), "alpaca-eval")
    worse = run_cli("check", str(tmp_path / "alpaca-7b"), "--against", str(tmp_path / "claude-2"),
                    "--rules", str(write_rules(tmp_path, "alpaca-7b", "claude-2")))
    assert worse.returncode == 1 and "FAILED" in worse.stdout and "dropped 0.14" in worse.stdout
    better = run_cli("check", str(tmp_path / "claude-2"), "--against", str(tmp_path / "alpaca-7b"),
                     "--rules", str(write_rules(tmp_path, "claude-2", "alpaca-7b")))
    assert better.returncode == 0, better.stdout + better.stderr


def write_rules(tmp_path, model, old_model):
    path = tmp_path / f"{model}.yaml"
    path.write_text(f"rules:\n  - {{model: {model}, old_model: {old_model}, max_drop: 0.02}}\n")
    return path


def mt_bench_run(tmp_path, name, qids):
    rows = [{"question_id": q, "model_1": "ckpt", "model_2": "base", "g1_winner": "model_1", "g2_winner": "tie",
             "judge": ["gpt-4", "pair-v2"], "turn": 1} for q in qids]
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    import_judgments(tmp_path / name, path, "mt-bench-pair")
    return tmp_path / name


@pytest.mark.parametrize("args,message", [
    (["--against", "{other}"], "share no prompts"),
    (["--rules", "{rules_unknown_model}"], "no model 'ckpx' (did you mean 'ckpt'?)"),
    (["--rules", "{rules_unknown_judge}"], "no judge 'gpt-5'"),
    (["--against", "{missing}"], "not a lima-eval run directory"),
    (["--rules", "{rules_bad}"], "give exactly one of"),
    ([], "nothing to check"),
])
def test_unusable_input_exits_2(tmp_path, args, message):
    new = mt_bench_run(tmp_path, "new", range(1, 30))
    other = mt_bench_run(tmp_path, "other", range(100, 130))
    files = {"other": str(other), "missing": str(tmp_path / "nope")}
    for key, rule in [("rules_unknown_model", "{model: ckpx, min_win_rate: 0.5}"),
                      ("rules_unknown_judge", "{model: ckpt, judge: gpt-5, min_win_rate: 0.5}"),
                      ("rules_bad", "{model: ckpt, min_win_rate: 0.5, max_drop: 0.1}")]:
        (tmp_path / f"{key}.yaml").write_text(f"rules:\n  - {rule}\n")
        files[key] = str(tmp_path / f"{key}.yaml")
    if args and args[0] == "--against" and "other" in args[1]:
        args = args + ["--max-drop", "0.1"]
    out = run_cli("check", str(new), *[a.format(**files) for a in args])
    assert out.returncode == 2, out.stdout + out.stderr
    assert message in out.stderr and out.stderr.startswith("error: ")


def test_helpers_raise_assertion_errors_with_the_numbers(runs):
    with pytest.raises(AssertionError, match=r"FAILED: drop in win_rate .*: dropped 0\.\d+, 95% interval dropped "
                                             r"0\.\d+ to 0\.\d+, n=400"):
        assert_no_regression(load_run(runs["worse"]), load_run(runs["good"]), model="ckpt", max_drop=0.05)
    assert assert_win_rate(runs["good"], model="ckpt", at_least=0.5).passed
    with pytest.raises(CheckInputError):
        assert_win_rate(runs["good"], model="nobody", at_least=0.5)


def test_the_shipped_example_through_pytester(pytester, runs):
    for f in ("conftest.py", "test_regression.py"):
        shutil.copy(REPO / "examples/regression" / f, pytester.path / f)

    def gate(new, model="ckpt"):
        return pytester.runpytest(str(pytester.path), f"--new-run={runs[new]}", f"--old-run={runs['good']}",
                                  f"--model={model}", "--min-win-rate=0.5", "-p", "no:cacheprovider")

    ok = gate("noise")
    ok.assert_outcomes(passed=2)
    bad = gate("worse")
    bad.assert_outcomes(failed=2)
    text = bad.stdout.str()
    assert "FAILED: drop in win_rate of ckpt vs base" in text and "95% interval" in text
    assert "shared prompts (paired)" in text
    unusable = gate("worse", model="nobody")
    unusable.assert_outcomes(failed=2)  # CheckInputError, not an AssertionError: the message says why
    assert "no model 'nobody'" in unusable.stdout.str()


@pytest.mark.parametrize("text,message", [
    ("resamples: many\nrules:\n  - {model: ckpt, min_win_rate: 0.5}\n", "resamples: expected an integer, got 'many'"),
    ("level: 2\nrules:\n  - {model: ckpt, min_win_rate: 0.5}\n", "level must be in (0, 1)"),
    ("rules:\n  - {model: ckpt, min_win_rate: 0.5, strict: 'yes'}\n", "rules[0], strict: expected true or false"),
    ("rules:\n  - {model: ckpt, min_win_rate: 0.5, metric: accuracy}\n", "rules[0], metric: 'accuracy'"),
    ("rules:\n  - {model: ckpt, min_win_rate: high}\n", "rules[0], min_win_rate: expected a number"),
    ("rules: [\n", "not valid YAML"),
])
def test_bad_rules_files_exit_2_naming_the_key(tmp_path, text, message):
    run = mt_bench_run(tmp_path, "new", range(1, 10))
    rules = tmp_path / "rules.yaml"
    rules.write_text(text)
    out = run_cli("check", str(run), "--rules", str(rules))
    assert out.returncode == 2 and message in out.stderr and f"{rules}" in out.stderr
