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
    rows = {(r["model"], r["baseline"]): r for r in summary["rows"]}
    # The SFT'd Gemma against its base model and against the embedded instruct model.
    assert set(rows) == {("gemma3-270m-sft-demo", "gemma3-270m-base"), ("gemma3-270m-sft-demo", "smollm2-135m-instruct")}
    for row in rows.values():
        assert row["n"] == summary["n_prompts"] == 30 and row["errors"] == 0  # logprob verdicts are always valid
        assert row["win"] + row["tie"] + row["loss"] == row["n"]
    text = (report / "report.md").read_text()
    assert "smoke-test judge" in text and "demonstrates the path" in text
    assert (report / "win_tie_loss.png").read_bytes()[:4] == b"\x89PNG"
    sft = json.loads((tmp_path / "results/quickstart/sft/gemma3-270m-sft-demo/lima_sft.json").read_text())
    assert sft["steps"] == 2
    for stage in ("generate gemma3-270m-sft-demo", "generate gemma3-270m-base", "generate smollm2-135m-instruct",
                  "judge lima-pairwise"):
        assert stage in first.stderr  # one progress bar per stage

    second = run_cli("run", cwd=tmp_path, timeout=300)
    assert second.returncode == 0
    assert "0 new model or judge calls" in second.stderr
