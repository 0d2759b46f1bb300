"""A human panel adds rows to the report and its figures; it does not reorder the judges' rows (issue 27)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lima_eval.judging.human import import_human
from lima_eval.report.build import build_report
from lima_eval.report.plots import winrate_axes


@pytest.fixture
def run_dir(figures_run: Path) -> Path:
    return figures_run


def summary_of(run_dir: Path) -> dict:
    return json.loads((build_report(run_dir) / "summary.json").read_text())


def top_to_bottom(fig) -> list[list[str]]:
    """Each panel's bar labels as the figure shows them, top first (the panels share the first one's labels)."""
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    return [labels if ax.get_ylim()[0] > ax.get_ylim()[1] else labels[::-1] for ax in fig.axes if ax.get_title()]


def test_a_human_panel_keeps_the_win_tie_loss_rows_in_order(run_dir, tmp_path):
    before = winrate_axes(summary_of(run_dir)["rows"])
    assert top_to_bottom(before) == [["mine\nvs base", "other\nvs base"]]
    labels = tmp_path / "labels.csv"  # people compared the second pair
    labels.write_text("prompt_id,model_a,model_b,label,annotator\nq0,other,base,a,ann1\nq1,base,other,b,ann1\n")
    import_human(run_dir, labels)
    after = winrate_axes(summary_of(run_dir)["rows"])
    # Two panels (the judge's and people's), each with the rows in the same order, the first on top.
    assert [ax.get_title() for ax in after.axes] == [before.axes[0].get_title(), "human"]
    assert top_to_bottom(after) == [["mine\nvs base", "other\nvs base"]] * 2


def test_a_human_rating_panel_lists_models_in_the_judges_order(run_dir, tmp_path):
    def rating_rows() -> list[tuple[str, str]]:
        return [(r["judge"], r["model"]) for r in summary_of(run_dir)["ratings"] if r["subset"] == "all"]

    judges = rating_rows()
    assert [m for _, m in judges] == ["mine", "other", "base"]
    labels = tmp_path / "labels.csv"  # people rated the baseline first
    labels.write_text("prompt_id,model,label,annotator\nq0,base,pass,ann1\nq1,base,fail,ann1\nq0,mine,pass,ann1\n")
    import_human(run_dir, labels)
    assert rating_rows() == judges + [("human", "mine"), ("human", "base")]
