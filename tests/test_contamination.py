"""The contamination guard: n-gram overlap between training data and benchmark prompts, planted and real (LIMA's
own train and test prompts), in the report (rates with and without the contaminated prompts), before SFT, and
as the `max_contamination` gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli, write_config

from lima_eval.benchmarks import load_prompt_file
from lima_eval.contamination import find, training_texts
from lima_eval.records import Prompt

LONG = "Explain how the water cycle moves water between the oceans, the air and the land over a year."


@pytest.mark.parametrize("train,contaminated", [
    (["Notes: EXPLAIN how the water-cycle moves water between the oceans, the air, and the land!"], True),  # 13+
    (["how the water cycle moves water between the oceans the air and the"], True),  # exactly 13 words
    (["the water cycle moves water between the oceans the air and the"], False),  # 12 words: below the n-gram
    (["Something else entirely."], False),
    ([], False),
])
def test_a_13_word_run_is_contamination_and_12_is_not(train, contaminated):
    hits = find(train, [Prompt(id="p", text=LONG)])
    assert bool(hits) == contaminated
    if contaminated:
        assert len(hits[0].matched.split()) == 13


def test_short_prompts_count_when_found_whole_and_every_turn_is_checked():
    prompts = [Prompt(id="short", text="Name a colour."), Prompt(id="other", text="Name a fruit."),
               Prompt(id="mt", text="Hi.", turns=("Hi.", LONG))]
    hits = find(["Please name a colour, then stop.", "x " + LONG], prompts)
    assert [h.prompt_id for h in hits] == ["short", "mt"]
    assert find(["Please name a colour."], prompts, n=2)[0].grams == 2  # "name a", "a colour"


def test_lima_train_first_turns_against_lima_test_prompts(shared_data):
    """Real data: LIMA's 1,030 train first turns against its 300 test prompts. One test prompt (index 83) shares
    a 13-word run with a train prompt; every other is clean."""
    train = training_texts(str(shared_data / "lima" / "lima_train_1030_prompts.jsonl"))
    test = load_prompt_file(shared_data / "lima" / "lima_test_300_prompts.jsonl", id_field="lima_test_index")
    hits = find(train, test)
    assert len(test) == 300 and [h.prompt_id for h in hits] == ["83"]
    assert hits[0].matched.startswith("i m feeling a bit lonely")
    planted = train + [test[7].text]
    assert {h.prompt_id for h in find(planted, test)} == {"83", "7"}


def make_run(tmp_path: Path, training: Path | None) -> Path:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"{LONG} Case number {i}."}) + "\n"
                               for i in range(3))
                       + "".join(json.dumps({"id": f"q{i}", "prompt": f"Write a haiku about the number {i}."}) + "\n"
                                 for i in range(5)))
    data = {"name": "c", "output_dir": str(tmp_path / "results"), "benchmark": {"name": "file", "path": str(prompts)},
            "models": [{"name": "echo", "backend": "scripted", "model": "echo"},
                       {"name": "fixed", "backend": "scripted", "model": "fixed:no"}], "baselines": ["fixed"],
            "judge": {"backend": "scripted", "model": "fixed:Verdict: A"}}
    if training is not None:
        data["contamination"] = {"data": [str(training)]}
    out = run_cli("run", str(write_config(tmp_path / "c.yaml", data)), "--no-progress")
    assert out.returncode == 0, out.stderr
    return tmp_path / "results" / "c"


def test_the_report_lists_contaminated_prompts_and_rates_without_them(tmp_path):
    training = tmp_path / "train.jsonl"
    training.write_text(json.dumps({"conversations": [LONG, "Evaporation, condensation, precipitation."]}) + "\n")
    run_dir = make_run(tmp_path, training)
    summary = json.loads((run_dir / "report" / "summary.json").read_text())
    c = summary["contamination"]
    assert (c["contaminated"], c["prompts"], c["share"]) == (3, 8, 0.375)
    assert [h["prompt_id"] for h in c["hits"]] == ["p0", "p1", "p2"]
    (row,) = summary["rows"]
    (clean,) = c["clean_rows"]
    assert (row["n"], clean["n"]) == (8, 5)  # the 8 prompts (both orders combined), then the 5 clean ones
    md = (run_dir / "report" / "report.md").read_text()
    assert "## Contamination" in md and "- `p0`:" in md and "Contamination: 3 of 8 prompts" in md
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {max_contamination: 0.1}\n")
    failed = run_cli("check", str(run_dir), "--rules", str(rules))
    assert failed.returncode == 1 and "share of prompts found in the training data <= 0.100  0.3750" in failed.stdout
    rules.write_text("rules:\n  - {max_contamination: 0.5}\n")
    assert run_cli("check", str(run_dir), "--rules", str(rules)).returncode == 0


def test_training_data_gone_after_the_run_leaves_report_and_other_gates_working(tmp_path):
    training = tmp_path / "train.jsonl"
    training.write_text(json.dumps({"conversations": [LONG]}) + "\n")
    run_dir = make_run(tmp_path, training)
    training.unlink()  # the run moved to a machine without its training data
    out = run_cli("report", str(run_dir))
    assert out.returncode == 0, out.stderr
    summary = json.loads((run_dir / "report" / "summary.json").read_text())
    assert summary["contamination"] is None
    assert any(n.startswith("Contamination was not checked:") and "train.jsonl" in n for n in summary["notes"])
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {model: echo, min_win_rate: 0.0}\n")
    assert run_cli("check", str(run_dir), "--rules", str(rules)).returncode == 0
    rules.write_text("rules:\n  - {max_contamination: 0.5}\n")
    out = run_cli("check", str(run_dir), "--rules", str(rules))
    assert out.returncode != 0 and "train.jsonl" in out.stderr and "Traceback" not in out.stderr


def test_no_training_data_no_section_and_the_gate_says_why(tmp_path):
    run_dir = make_run(tmp_path, None)
    summary = json.loads((run_dir / "report" / "summary.json").read_text())
    assert summary["contamination"] is None and "## Contamination" not in (run_dir / "report" / "report.md").read_text()
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {max_contamination: 0.1}\n")
    out = run_cli("check", str(run_dir), "--rules", str(rules))
    assert out.returncode == 2 and "needs training data to check against" in out.stderr


def test_the_sft_stage_warns_before_training(tmp_path, capsys):
    """The warning the SFT stage prints before it trains, on the demo SFT data planted into the benchmark."""
    from lima_eval.config import load_config
    from lima_eval.pipeline import warn_contamination
    from lima_eval.sft.data import load_conversations

    first = load_conversations("demo")[0][0]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "planted", "prompt": first}) + "\n"
                       + json.dumps({"id": "clean", "prompt": "Write a haiku about the number nine."}) + "\n")
    cfg = load_config(write_config(tmp_path / "c.yaml", {
        "name": "s", "output_dir": str(tmp_path / "results"), "benchmark": {"name": "file", "path": str(prompts)},
        "sft": {"name": "tuned", "base": "embedded:tiny-random", "data": "demo"},
        "models": [{"name": "b", "backend": "scripted", "model": "echo"}], "baselines": ["b"]}))
    found = warn_contamination(cfg)
    assert found is not None and [h["prompt_id"] for h in found["hits"]] == ["planted"]
    assert "warning: contamination: 1 of 2 benchmark prompts appear in the training data" in capsys.readouterr().err


@pytest.mark.parametrize("value,message", [
    ({"ngram": 0}, "contamination.ngram': 0 is out of range"),
    ({"ngram": "13"}, "contamination.ngram': expected int"),
    ({"data": "train.jsonl"}, "contamination.data': expected a list"),
    ({"size": 13}, "unknown config key 'contamination.size'"),
    ({"data": ["/nowhere/train.jsonl"]}, "/nowhere/train.jsonl"),
])
def test_bad_contamination_settings_are_named(tmp_path, value, message):
    data = {"name": "c", "output_dir": str(tmp_path / "results"), "benchmark": "demo",
            "models": [{"name": n, "backend": "scripted", "model": "echo"} for n in ("a", "b")], "baselines": ["b"],
            "contamination": value}
    out = run_cli("run", str(write_config(tmp_path / "c.yaml", data)), "--no-progress")
    assert out.returncode != 0 and message in out.stderr, out.stderr
    assert not (tmp_path / "results").exists()
