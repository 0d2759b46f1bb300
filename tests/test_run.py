"""`Run`: a run folder opened once (config, prompts, answers, id recipes), and its records as DataFrames."""

import dataclasses
import json

import pytest
from conftest import longer_answer_judge, run_cli, server_run_config

from lima_eval.config import load_config
from lima_eval.errors import LimaEvalError
from lima_eval.pipeline import run
from lima_eval.records import Generation, Judgment, Rating
from lima_eval.run import Run
from lima_eval.testing.openai_server import OpenAITestServer

pd = pytest.importorskip("pandas")


def responder(body):
    """Models answer by name; the pairwise judge prefers the longer answer; the absolute judge says pass."""
    text = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    if "[Answer A]" in text:
        return longer_answer_judge(body)
    if "Rating:" in text or "excellent" in text:
        return "Rating: pass"
    return {"mine": "a long and careful answer", "base": "short"}[body["model"]]


@pytest.fixture
def finished(tmp_path, prompts_file):
    """A run with generations, pairwise judgments (both orders), ratings and a human label."""
    with OpenAITestServer(responder=responder) as server:
        path = server_run_config(tmp_path, server.base_url, {"name": "file", "path": str(prompts_file)},
                                 judge={"order": "both"}, judges=({"name": "lima-absolute"},))
        cfg = load_config(path)
        run(cfg, show_progress=False)
    labels = tmp_path / "labels.csv"
    labels.write_text("prompt_id,model_a,model_b,label,annotator\np1,mine,base,a,ann\n")
    assert run_cli("import-human", str(cfg.run_dir), str(labels)).returncode == 0
    return cfg


def test_a_run_opens_once_with_its_config_prompts_and_answers(finished):
    opened = Run(finished.run_dir)
    assert opened.config == finished  # the resolved config on disk is the one the run used
    assert [p.id for p in opened.prompts] == ["p1", "p2", "p3", "p4", "p5", "p6"]
    answers = opened.answers()
    assert len(answers) == 12 and {m for _, m, _ in answers} == {"mine", "base"}
    for (pid, model, turn), g in answers.items():
        prompt = next(p for p in opened.prompts if p.id == pid)
        assert g.id == opened.generation_id(prompt, finished.model(model), model, turn)


def test_a_run_shows_its_folder_name_models_and_judges_without_reading_records(finished):
    opened = Run(finished.run_dir)
    shown = repr(opened)
    assert shown == (f"Run({str(finished.run_dir)!r}, name='run', models=['mine', 'base'], baselines=['base'], "
                     "judges=['lima-pairwise (gpt-4o)', 'lima-absolute (gpt-4o)'])")
    assert "prompts" not in vars(opened)  # cheap: not even the prompts were loaded


def test_records_come_back_as_dataframes_with_every_field(finished):
    opened = Run(finished.run_dir)
    gens, judgments, ratings = opened.generations(), opened.judgments(), opened.ratings()
    for frame, cls in ((gens, Generation), (judgments, Judgment), (ratings, Rating)):
        assert {f.name for f in dataclasses.fields(cls)} <= set(frame.columns)
    assert len(gens) == len(opened.store.generations()) == 12
    assert set(judgments["source"]) == {"judge", "human"}
    assert (judgments["source"] == "judge").sum() == 12  # 6 pairs in both orders
    assert set(ratings["model"]) == {"mine", "base"}
    on_disk = opened.store.judgments()
    for row in judgments[judgments["source"] == "judge"].itertuples():
        assert on_disk[row.id].verdict == (None if pd.isna(row.verdict) else row.verdict)


def test_summary_is_the_reports(finished):
    summary = json.loads((finished.run_dir / "report" / "summary.json").read_text())
    frame = Run(finished.run_dir).summary()
    report_rows = [r for r in summary["rows"]]
    assert len(frame) == len(report_rows) and len(frame) >= 2  # the model judge and the human label
    for got, want in zip(frame.to_dict("records"), report_rows):
        assert (got["model"], got["baseline"], got["judge"]) == (want["model"], want["baseline"], want["judge"])
        assert got["n"] == want["n"] and got["win_rate"] == pytest.approx(want["win_rate"])


@pytest.mark.parametrize("make,message", [
    (lambda p: None, "not a lima-eval run directory (no config.yaml)"),
    (lambda p: (p / "config.yaml").write_text("- a\n- list\n"), "config.yaml: expected a mapping"),
    (lambda p: (p / "config.yaml").write_text("name: x\nmodles: []\n"), "unknown config key 'modles'"),
])
def test_a_folder_that_is_not_a_usable_run_says_why(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(LimaEvalError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Run(tmp_path)
