"""The report's one column spec: a column declared once reaches Markdown, HTML, CSV and the leaderboard; `check`
metrics are columns; the report, `check` and checkpoint selection count a win rate the same way."""

import csv
import json

import numpy as np
import pytest

from lima_eval.check import METRICS, Rule, evaluate, load_run
from lima_eval.errors import CheckInputError
from lima_eval.judging.foreign import import_judgments
from lima_eval.report.build import build_report, gather
from lima_eval.report.columns import (
    LEADERBOARD,
    PAIRWISE,
    RATE,
    Column,
    check_metrics,
    csv_fields,
    csv_row,
    csv_safe,
    html_table,
    leaderboard_columns,
    markdown_table,
    shown,
)
from lima_eval.report.stats import RATES, rate_values
from lima_eval.run import Run
from lima_eval.selection import epoch_row

# The model's share of each verdict against the baseline, one prompt each (AlpacaEval's preference - 1):
# wins, ties, losses, a continuous preference and an unreadable verdict (None).
SHARES = [1.0, 1.0, 1.0, 0.5, 0.0, 0.7, 0.2, None, 1.0, 0.5, 0.0, 0.5]


@pytest.fixture
def run_dir(tmp_path):
    """A run of SHARES, imported from an AlpacaEval-format file: epoch-2 (the model) vs epoch-1 (the baseline)."""
    rows = [{"instruction": f"Instruction {i}", "output_1": "base answer", "generator_1": "epoch-1",
             "output_2": "model answer", "generator_2": "epoch-2", "annotator": "judge",
             "preference": None if s is None else 1.0 + s} for i, s in enumerate(SHARES)]
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(rows))
    import_judgments(tmp_path / "run", path, "alpaca-eval")
    return tmp_path / "run"


def hand_counts() -> dict[str, float]:
    """The three rates of SHARES counted by hand: a tie is half a win (win_rate averages the shares as given)."""
    read = [s for s in SHARES if s is not None]
    wins, ties = sum(s > 0.5 for s in read), sum(s == 0.5 for s in read)
    return {"n": len(read), "win": wins, "tie": ties, "loss": len(read) - wins - ties,
            "errors": len(SHARES) - len(read), "win_rate": sum(read) / len(read),
            "discrete_win_rate": (wins + ties / 2) / len(read), "equal_or_better": (wins + ties) / len(read)}


def test_headers_and_csv_fields_are_unique():
    for spec in (PAIRWISE, LEADERBOARD):
        headers = [c.header for c in spec]
        assert len(headers) == len(set(headers))
        assert len(csv_fields(spec)) == len(set(csv_fields(spec)))


def test_every_check_metric_is_a_rate_column_the_stats_count():
    columns = {c.key: c for c in PAIRWISE}
    assert METRICS == check_metrics() and METRICS
    for metric in METRICS:
        assert columns[metric].kind is RATE and metric in RATES


def test_an_unknown_metric_lists_the_check_columns(run_dir):
    with pytest.raises(CheckInputError) as err:
        evaluate(Rule("min_win_rate", 0.5, "epoch-2", metric="accuracy"), load_run(run_dir))
    assert all(m in str(err.value) for m in check_metrics())


def test_a_new_column_reaches_markdown_html_csv_and_the_leaderboard(run_dir):
    rows = json.loads((build_report(run_dir) / "summary.json").read_text())["rows"]
    extra = Column("shorter_wins", "shorter < longer % [95%]", RATE, leaderboard=True)
    spec = (*PAIRWISE, extra)
    rows = [r | {"shorter_wins": 0.25, "shorter_wins_ci_low": 0.1, "shorter_wins_ci_high": 0.5, "shorter_wins_na": None}
            for r in rows]
    md = markdown_table(shown(spec), rows).splitlines()
    assert md[0].endswith("| shorter &lt; longer % [95%] |") and md[1].endswith("---:|")  # Markdown-escaped
    assert all(line.endswith("| 25.0 [10.0, 50.0] |") for line in md[2:]) and len(md) == 2 + len(rows)
    page = html_table(shown(spec), rows)
    assert "<th>shorter &lt; longer % [95%]</th>" in page and "<td>25.0 [10.0, 50.0]</td>" in page
    out = csv_row(spec, rows[0])
    assert list(out)[-4:] == ["shorter_wins", "shorter_wins_ci_low", "shorter_wins_ci_high", "shorter_wins_na"]
    assert out["shorter_wins"] == 0.25
    board = leaderboard_columns(spec)
    assert extra in board and extra not in LEADERBOARD


def test_the_report_is_rendered_from_the_spec(run_dir):
    out = build_report(run_dir)
    rows = json.loads((out / "summary.json").read_text())["rows"]
    assert markdown_table(shown(PAIRWISE), rows) in (out / "report.md").read_text()
    assert html_table(shown(PAIRWISE), rows) in (out / "report.html").read_text()
    with (out / "summary.csv").open() as f:
        assert next(csv.reader(f)) == csv_fields(PAIRWISE)
    # Every value of a summary row is some column's field: nothing computed goes undeclared.
    assert set(rows[0]) == set(csv_fields(PAIRWISE))


def test_an_empty_table_has_one_placeholder_row_as_wide_as_the_header():
    lines = markdown_table(shown(PAIRWISE), [], empty="(no judgments yet)").splitlines()
    assert len(lines) == 3 and lines[2].count("|") == lines[0].count("|")


def test_report_check_and_checkpoint_selection_count_the_same_win_rate(run_dir):
    want = hand_counts()
    (row,) = json.loads((build_report(run_dir) / "summary.json").read_text())["rows"]
    assert (row["model"], row["baseline"]) == ("epoch-2", "epoch-1")
    assert {k: row[k] for k in ("n", "win", "tie", "loss", "errors")} == {
        k: want[k] for k in ("n", "win", "tie", "loss", "errors")}
    read = [s for s in SHARES if s is not None]
    score = np.array(read)
    verdict = np.sign(score - 0.5).astype(np.int8)
    run = load_run(run_dir)
    for metric in METRICS:
        assert row[metric] == pytest.approx(want[metric], abs=1e-6)
        assert float(rate_values(metric, score, verdict).mean()) == pytest.approx(want[metric])
        result = evaluate(Rule("min_win_rate", 0.5, "epoch-2", metric=metric), run)
        assert (result.value, result.low, result.high) == pytest.approx(
            (row[metric], row[metric + "_ci_low"], row[metric + "_ci_high"]), abs=1e-6)
        assert result.n == want["n"]
    inp, _ = gather(Run(run_dir))
    epoch = epoch_row(inp.judgments, 2)
    assert {k: epoch[k] for k in ("n", "win", "tie", "loss", "errors")} == {
        k: want[k] for k in ("n", "win", "tie", "loss", "errors")}
    assert epoch["score"] == round(want["discrete_win_rate"], 4) == round(row["discrete_win_rate"], 4)
    assert len({want[m] for m in METRICS}) == len(METRICS)  # the data tell the rates apart


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x\")", "+1+1", "-2", "@SUM(A1)"])
def test_no_exported_csv_cell_starts_a_spreadsheet_formula(tmp_path, name):
    """Model names come from users' files; every CSV the report and the leaderboard write quotes any text cell a
    spreadsheet would run."""
    from lima_eval.report.leaderboard import write_leaderboard

    rows = [{"instruction": f"Instruction {i}", "output_1": "base", "generator_1": "base", "output_2": "mine",
             "generator_2": name, "annotator": "judge", "preference": 1.0 + s} for i, s in enumerate((1.0, 0.0, 0.5))]
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(rows))
    import_judgments(tmp_path / "results" / "run", path, "alpaca-eval")
    from lima_eval.judging.human import import_human

    labels = tmp_path / "ratings.csv"  # human ratings of the same model: ratings.csv carries its name too
    with labels.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["prompt_id", "model", "label", "annotator"])
        w.writerows([[str(i), name, "pass", "ann"] for i in range(3)])
    import_human(tmp_path / "results" / "run", labels)
    build_report(tmp_path / "results" / "run")
    board = write_leaderboard(tmp_path / "results")
    exports = sorted((tmp_path / "results/run/report").glob("*.csv")) + [board / "leaderboard.csv"]
    assert {p.name for p in exports} >= {"summary.csv", "bradley_terry.csv", "ratings.csv", "leaderboard.csv"}
    for csv_path in exports:
        cells = [c for row in csv.reader(csv_path.open(encoding="utf-8")) for c in row]
        if csv_path.name != "agreement.csv":  # judges only
            assert "'" + name in cells, csv_path
        assert not any(c.startswith(("=", "+", "@", "\t")) for c in cells), csv_path
        # Numbers stay numbers (a negative figure is not text and keeps its sign).
    assert csv_safe(-0.25) == -0.25 and csv_safe("plain") == "plain"
