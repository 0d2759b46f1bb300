"""A report draws its figures without pyplot, and a rebuild whose figures' data did not change keeps the PNGs as they
are, without importing matplotlib at all (importing it was most of a small report's time, issue 28)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

from lima_eval.judging.human import import_human
from lima_eval.report.build import build_report

FIGURES = ("win_tie_loss.png", "ratings.png")


@pytest.fixture
def run_dir(figures_run: Path) -> Path:
    return figures_run


def report_in_new_process(run_dir: Path) -> list[str]:
    """Build the report in a new interpreter; the matplotlib modules it imported."""
    code = ("import sys; from pathlib import Path; from lima_eval.report.build import build_report; "
            f"build_report(Path({str(run_dir)!r})); "
            "import json; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def figures(run_dir: Path) -> dict[str, tuple[bytes, int]]:
    return {name: ((run_dir / "report" / name).read_bytes(), (run_dir / "report" / name).stat().st_mtime_ns)
            for name in FIGURES}


def test_figures_are_drawn_without_pyplot_and_kept_when_nothing_changed(run_dir):
    for name in FIGURES:
        (run_dir / "report" / name).unlink()
    drawn = report_in_new_process(run_dir)
    assert "matplotlib.figure" in drawn and "matplotlib.pyplot" not in drawn
    before = figures(run_dir)
    assert all(png.startswith(b"\x89PNG") for png, _ in before.values())
    # Rebuilt from the same records: every file of the report is written again, the figures are kept as they are
    # and matplotlib is never imported.
    assert report_in_new_process(run_dir) == []
    assert figures(run_dir) == before
    # Another anchor moves the Bradley-Terry ratings in summary.json and the pages, not what the figures show.
    ratings = json.loads((run_dir / "report" / "summary.json").read_text())["bradley_terry"]
    out = run_cli("report", str(run_dir), "--anchor", "other")
    assert out.returncode == 0, out.stderr
    assert json.loads((run_dir / "report" / "summary.json").read_text())["bradley_terry"] != ratings
    assert figures(run_dir) == before


def test_a_figure_is_redrawn_when_what_it_shows_changed(run_dir, tmp_path):
    build_report(run_dir)
    before = figures(run_dir)
    labels = tmp_path / "labels.csv"  # people compared a pair: a second panel in the win / tie / loss figure
    labels.write_text("prompt_id,model_a,model_b,label,annotator\nq0,other,base,a,ann1\nq1,base,other,b,ann1\n")
    import_human(run_dir, labels)
    build_report(run_dir)
    after = figures(run_dir)
    assert after["win_tie_loss.png"][0] != before["win_tie_loss.png"][0]
    assert after["ratings.png"] == before["ratings.png"]  # the ratings did not change


def test_a_png_not_drawn_from_these_rows_is_replaced(run_dir):
    """A PNG that does not carry the hash of these rows (another run's figure copied over it, one drawn by an older
    lima-eval, any other file) is drawn again."""
    report = run_dir / "report"
    drawn = (report / "win_tie_loss.png").read_bytes()
    (report / "win_tie_loss.png").write_bytes((report / "ratings.png").read_bytes())
    (report / "ratings.png").write_bytes(b"not a png")
    build_report(run_dir)
    assert (report / "win_tie_loss.png").read_bytes() == drawn
    assert (report / "ratings.png").read_bytes().startswith(b"\x89PNG")
