"""Published numbers from real labels: AlpacaEval's leaderboards and PandaLM's inter-annotator kappas."""

import csv
import json
import math

import pytest
from conftest import run_cli

from lima_eval.judging.foreign import import_judgments
from lima_eval.report.build import build_report

LEADERBOARDS = {"alpaca_eval_gpt4": "data_AlpacaEval/alpaca_eval_gpt4_leaderboard.csv",
                "weighted_alpaca_eval_gpt4_turbo": "data_AlpacaEval_2/weighted_alpaca_eval_gpt4_turbo_leaderboard.csv"}


def test_alpaca_eval_leaderboard_figures_to_1e_4(shared_data, tmp_path):
    files = sorted(shared_data.glob("alpaca_eval/results/*/*/annotations.json"))
    assert len(files) == 14
    checked = 0
    for path in files:
        annotator, model = path.parent.name, path.parent.parent.name
        board = {r[""]: r for r in csv.DictReader((shared_data / "alpaca_eval/leaderboards" /
                                                   LEADERBOARDS[annotator]).open())}
        run = tmp_path / f"{model}--{annotator}"
        import_judgments(run, path, "alpaca-eval")
        summary = json.loads((build_report(run) / "summary.json").read_text())
        if model not in board:  # the reference model judged against itself
            continue
        (row,) = [r for r in summary["rows"] if r["model"] == model]
        want = board[model]
        assert 100 * row["win_rate"] == pytest.approx(float(want["win_rate"]), abs=1e-4)
        assert 100 * row["standard_error"] == pytest.approx(float(want["standard_error"]), abs=1e-4)
        assert 100 * row["discrete_win_rate"] == pytest.approx(float(want["discrete_win_rate"]), abs=1e-4)
        assert (row["win"], row["loss"], row["tie"]) == (int(want["n_wins"]), int(want["n_wins_base"]),
                                                         int(want["n_draws"]))
        assert row["n"] == int(want["n_total"])
        assert row["win_rate_ci_low"] <= row["win_rate"] <= row["win_rate_ci_high"]
        checked += 1
    assert checked == 14


def test_pandalm_inter_annotator_kappas(shared_data, tmp_path):
    run = tmp_path / "panda"
    import_judgments(run, shared_data / "pandalm/testset-v1.json", "pandalm")
    import_judgments(run, shared_data / "pandalm/gpt-3.5-turbo-testset-v1.json", "pandalm")
    summary = json.loads((build_report(run) / "summary.json").read_text())
    pairs = {(r["judge_a"], r["judge_b"]): r for r in summary["agreement"]}
    # PandaLM's README: 0.85, 0.88, 0.86 (recomputed in ../shared/data/pandalm/PROVENANCE.md to 4 places).
    for (a, b), kappa, raw in [(("annotator1", "annotator2"), 0.8520, 0.9129),
                               (("annotator1", "annotator3"), 0.8789, 0.9289),
                               (("annotator2", "annotator3"), 0.8617, 0.9179)]:
        r = pairs[(f"human:{a}", f"human:{b}")]
        assert r["n"] == 999
        assert r["kappa"] == pytest.approx(kappa, abs=5e-5) and r["with_ties"] == pytest.approx(raw, abs=5e-5)
    judge = pairs[("pandalm:gpt-3.5-turbo", "human (majority)")]
    assert judge["n"] == 974 and 0 < judge["kappa"] < 0.85  # the model judge agrees less than humans do
    assert judge["longer_answer_vs_b"] is not None and judge["tie_discounted"] > judge["longer_answer_vs_b"]
    assert (run / "report" / "report.html").exists()


def test_leaderboard_merges_runs(shared_data, tmp_path):
    results = tmp_path / "results"
    for model in ("alpaca-7b", "claude-2", "vicuna-13b"):
        path = shared_data / f"alpaca_eval/results/{model}/weighted_alpaca_eval_gpt4_turbo/annotations.json"
        import_judgments(results / model, path, "alpaca-eval")
    out = run_cli("leaderboard", str(results))
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader((results / "leaderboard/leaderboard.csv").open()))
    assert [r["model"] for r in rows] == ["claude-2", "vicuna-13b", "alpaca-7b"]  # best win rate first
    assert {r["baseline"] for r in rows} == {"gpt4_1106_preview"}
    board = {r[""]: r for r in csv.DictReader((shared_data / "alpaca_eval/leaderboards" /
                                               LEADERBOARDS["weighted_alpaca_eval_gpt4_turbo"]).open())}
    for r in rows:  # each run's win rate is the published one
        assert 100 * float(r["win_rate"]) == pytest.approx(float(board[r["model"]]["win_rate"]), abs=1e-4)
    assert all(float(r["win_rate_ci_low"]) < float(r["win_rate"]) < float(r["win_rate_ci_high"]) for r in rows)
    md = (results / "leaderboard/leaderboard.md").read_text()
    assert "## alpaca-eval:weighted_alpaca_eval_gpt4_turbo" in md
    png = next((results / "leaderboard").glob("leaderboard_*.png"))
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "data:image/png;base64," in (results / "leaderboard/leaderboard.html").read_text()


def test_report_anchor_option(shared_data, tmp_path):
    run = tmp_path / "c2"
    import_judgments(run, shared_data / "alpaca_eval/results/claude-2/weighted_alpaca_eval_gpt4_turbo/annotations.json",
                     "alpaca-eval")
    out = run_cli("report", str(run), "--anchor", "claude-2")
    assert out.returncode == 0, out.stderr
    bt = {r["model"]: r for r in json.loads((run / "report/summary.json").read_text())["bradley_terry"]}
    assert bt["claude-2"]["rating"] == 1000 and bt["claude-2"]["anchor"] == "claude-2"
    # One pair: Bradley-Terry is the log-odds of the discrete score, with one virtual tie (half a win each).
    row = json.loads((run / "report/summary.json").read_text())["rows"][0]
    won = row["win"] + row["tie"] / 2
    expected = 1000 + 400 * math.log10((row["n"] - won + 0.5) / (won + 0.5))
    assert bt["gpt4_1106_preview"]["rating"] == pytest.approx(expected, abs=0.01)
    bad = run_cli("report", str(run), "--anchor", "claud")
    assert bad.returncode == 1 and "did you mean 'claude-2'" in bad.stderr


AE2_SEVEN = ("alpaca-7b", "claude-2", "gpt-3.5-turbo-0301", "gpt-3.5-turbo-1106", "vicuna-13b", "falcon-7b-instruct",
             "gpt4_gamed")


def _ranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0] * len(values)
    for rank, i in enumerate(order):
        ranks[i] = rank
    return ranks


def test_length_control_with_instruction_difficulty_ranks_the_seven_as_alpaca_eval_does(shared_data, tmp_path):
    """The seven AlpacaEval 2 annotation files, one run each, on one leaderboard: the instruction-difficulty LC
    (fitted jointly over the seven) puts them in AlpacaEval's published LC order (Spearman >= 0.9), where the
    length-gamed gpt4_gamed no longer comes out on top; the mean absolute difference is small."""
    results = tmp_path / "results"
    for model in AE2_SEVEN:
        path = shared_data / f"alpaca_eval/results/{model}/weighted_alpaca_eval_gpt4_turbo/annotations.json"
        import_judgments(results / model, path, "alpaca-eval")
    out = run_cli("leaderboard", str(results))
    assert out.returncode == 0, out.stderr
    rows = {r["model"]: r for r in csv.DictReader((results / "leaderboard/leaderboard.csv").open())}
    board = {r[""]: r for r in csv.DictReader((shared_data / "alpaca_eval/leaderboards" /
                                               LEADERBOARDS["weighted_alpaca_eval_gpt4_turbo"]).open())}
    ours = [100 * float(rows[m]["length_controlled_difficulty_win_rate"]) for m in AE2_SEVEN]
    published = [float(board[m]["length_controlled_winrate"]) for m in AE2_SEVEN]
    assert all(rows[m]["lc_difficulty_models"] == "7" for m in AE2_SEVEN)
    a, b = _ranks(ours), _ranks(published)
    spearman = 1 - 6 * sum((x - y) ** 2 for x, y in zip(a, b)) / (7 * (7 ** 2 - 1))
    mad = sum(abs(x - y) for x, y in zip(ours, published)) / 7
    assert spearman >= 0.9 and mad < 5, (spearman, mad, ours)
    assert max(AE2_SEVEN, key=lambda m: float(rows[m]["length_controlled_difficulty_win_rate"])) == "claude-2"
    for m in AE2_SEVEN:  # each with its interval around it
        lo, v, hi = (float(rows[m][f"length_controlled_difficulty_win_rate{s}"]) for s in ("_ci_low", "", "_ci_high"))
        assert lo < v < hi
    # One run holding all seven gives the same figures as the leaderboard over seven runs.
    one = tmp_path / "one"
    for model in AE2_SEVEN:
        import_judgments(one, shared_data / f"alpaca_eval/results/{model}/weighted_alpaca_eval_gpt4_turbo/"
                         "annotations.json", "alpaca-eval")
    summary = json.loads((build_report(one) / "summary.json").read_text())
    same = {r["model"]: r["length_controlled_difficulty_win_rate"] for r in summary["rows"]}
    for m in AE2_SEVEN:
        assert 100 * same[m] == pytest.approx(100 * float(rows[m]["length_controlled_difficulty_win_rate"]), abs=1e-3)
