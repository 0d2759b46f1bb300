"""The README's first command, for real: the embedded models, offline, end to end (minutes on 2 CPU cores)."""

import json

import pytest

from conftest import run_cli


@pytest.mark.slow
def test_default_run_end_to_end_then_nothing_to_do(tmp_path):
    first = run_cli("run", cwd=tmp_path, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    report = tmp_path / "results" / "quickstart" / "report"
    assert first.stdout.strip() == f"report: {report.relative_to(tmp_path) / 'report.md'}"
    summary = json.loads((report / "summary.json").read_text())
    (row,) = summary["rows"]
    assert (row["model"], row["baseline"]) == ("smollm2-135m-instruct", "gemma3-270m-base")
    assert row["n"] + row["errors"] == summary["n_prompts"] == 30
    assert row["win"] + row["tie"] + row["loss"] == row["n"]
    assert "smoke-test judge" in (report / "report.md").read_text()
    assert (report / "win_tie_loss.png").read_bytes()[:4] == b"\x89PNG"
    for stage in ("generate smollm2-135m-instruct", "generate gemma3-270m-base", "judge lima-pairwise"):
        assert stage in first.stderr  # one progress bar per stage

    second = run_cli("run", cwd=tmp_path, timeout=300)
    assert second.returncode == 0
    assert "0 new model or judge calls" in second.stderr
