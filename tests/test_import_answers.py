"""import-answers with the real files in ../shared/data (LIMA / Llama-2 answers, MT-bench, AlpacaEval)."""

import json

import pytest
from conftest import run_cli, write_config

from lima_eval.answers import import_answers
from lima_eval.config import load_config, to_plain
from lima_eval.errors import ConfigError, InputError
from lima_eval.store import RunStore


def make_run(tmp_path, benchmark, models, baselines):
    cfg = load_config(write_config(tmp_path / "c.yaml", {
        "name": "imp", "output_dir": str(tmp_path / "results"), "benchmark": benchmark,
        "models": models, "baselines": baselines}))
    RunStore(cfg.run_dir).write_config(to_plain(cfg))
    return cfg


def test_llama2_answers_to_lima_test_by_text(tmp_path, shared_data):
    cfg = make_run(tmp_path, {"name": "lima-test", "path": str(shared_data / "lima/lima_test_300_prompts.jsonl")},
                   [{"name": "mine", "model": "embedded:tiny-random"},
                    {"name": "llama-2-7b-chat", "backend": "imported", "model": "just-eval"}], ["llama-2-7b-chat"])
    answers = tmp_path / "llama2.jsonl"
    rows = [json.loads(x)
            for x in (shared_data / "lima/lima_test_300_llama2_7b_chat_outputs.jsonl").read_text().splitlines()]
    answers.write_text("".join(json.dumps({"prompt": r["instruction"], "answer": r["output"]}) + "\n" for r in rows)
                       + json.dumps({"prompt": "a prompt that is not in LIMA", "answer": "x"}) + "\n")
    result = import_answers(cfg.run_dir, answers, "llama-2-7b-chat")
    assert result.imported == 300 and result.unmatched == ["line 301: no prompt of the run has this text"]
    gens = RunStore(cfg.run_dir).generations()
    by_prompt = {g.prompt_id: g.text for g in gens.values()}
    assert by_prompt["0"] == rows[0]["output"]
    assert import_answers(cfg.run_dir, answers, "llama-2-7b-chat").already == 300  # idempotent


def test_mt_bench_answers_both_turns(tmp_path, shared_data):
    cfg = make_run(tmp_path, {"name": "mt-bench", "path": str(shared_data / "mt_bench/question.jsonl")},
                   [{"name": "mine", "model": "embedded:tiny-random"},
                    {"name": "vicuna-13b", "backend": "imported", "model": "fastchat"}], ["vicuna-13b"])
    path = shared_data / "mt_bench/model_answer/vicuna-13b-v1.3.jsonl"
    if not path.exists():
        path = min((shared_data / "mt_bench/model_answer").glob("*.jsonl"))
    result = import_answers(cfg.run_dir, path, "vicuna-13b")
    assert result.imported == 160 and not result.unmatched  # 80 questions x 2 turns
    first = json.loads(path.read_text().splitlines()[0])
    gens = [g for g in RunStore(cfg.run_dir).generations().values() if g.prompt_id == str(first["question_id"])]
    assert sorted((g.turn, g.text) for g in gens) == list(enumerate(first["choices"][0]["turns"]))


def test_alpaca_eval_outputs_by_instruction(tmp_path, shared_data):
    outputs = shared_data / "alpaca_eval/results/gpt4_1106_preview/model_outputs.json"
    cfg = make_run(tmp_path, {"name": "alpaca-eval", "path": str(outputs), "limit": 50},
                   [{"name": "mine", "model": "embedded:tiny-random"},
                    {"name": "gpt4_1106_preview", "backend": "imported", "model": "alpaca-eval"}],
                   ["gpt4_1106_preview"])
    result = import_answers(cfg.run_dir, outputs, "gpt4_1106_preview")
    assert result.imported == 50 and len(result.unmatched) == 805 - 50
    assert result.unmatched[0] == "line 51: no prompt of the run has this text"


def test_model_must_be_imported_and_rows_must_be_well_formed(tmp_path, prompts_file):
    cfg = make_run(tmp_path, {"name": "file", "path": str(prompts_file)},
                   [{"name": "mine", "model": "embedded:tiny-random"},
                    {"name": "ext", "backend": "imported", "model": "x"}], ["ext"])
    good = tmp_path / "a.jsonl"
    good.write_text(json.dumps({"prompt_id": "p1", "answer": "A1"}) + "\n")
    with pytest.raises(ConfigError, match="backend: imported"):
        import_answers(cfg.run_dir, good, "mine")
    for text, message in [('{"prompt_id": "p1"}\n', "line 1, field 'answer'"),
                          ('{"answer": "x"}\n', "line 1, field 'prompt_id'"),
                          ('{"prompt_id": "p1", "answer": "a"}\n{"prompt_id": "p1", "answer": "b"}\n',
                           "line 2: a second answer for prompt 'p1'")]:
        bad = tmp_path / "bad.jsonl"
        bad.write_text(text)
        with pytest.raises(InputError, match=message):
            import_answers(cfg.run_dir, bad, "ext")
    assert RunStore(cfg.run_dir).generations() == {}  # nothing written from a bad file
    proc = run_cli("import-answers", str(cfg.run_dir), str(good), "--model", "ext")
    assert proc.returncode == 0 and "imported 1 answer(s) for ext" in proc.stderr


def test_mt_bench_row_without_question_id_names_the_field(tmp_path, prompts_file):
    cfg = make_run(tmp_path, {"name": "file", "path": str(prompts_file)},
                   [{"name": "mine", "model": "embedded:tiny-random"},
                    {"name": "ext", "backend": "imported", "model": "x"}], ["ext"])
    bad = tmp_path / "answers.jsonl"
    bad.write_text(json.dumps({"choices": [{"turns": ["a", "b"]}]}) + "\n")
    with pytest.raises(InputError, match="line 1, field 'question_id': missing or not a int or str"):
        import_answers(cfg.run_dir, bad, "ext", fmt="mt-bench")


def test_answers_start_a_run_of_imports_without_a_config_and_grow_it(tmp_path):
    """import-answers into a new folder makes the run (its prompts from the file's texts, the model imported);
    a second model's file in another row order joins the same prompts; AlpacaEval-style JSONL needs no --format."""
    from lima_eval.answers import import_answers
    from lima_eval.run import Run

    first = tmp_path / "a.jsonl"
    first.write_text("".join(json.dumps({"instruction": q, "output": f"A to {q}"}) + "\n" for q in ("Q one", "Q two")))
    result = import_answers(tmp_path / "new", first, "model-a")
    assert result.imported == 2
    second = tmp_path / "b.json"
    second.write_text(json.dumps([{"instruction": q, "output": f"B to {q}"} for q in ("Q two ", "Q one", "Q three")]))
    assert import_answers(tmp_path / "new", second, "model-b").imported == 3
    run = Run(tmp_path / "new")
    assert [m.name for m in run.config.models] == ["model-a", "model-b"]
    assert all(m.backend == "imported" for m in run.config.models)
    texts = {p.id: p.text for p in run.prompts}
    assert sorted(texts.values()) == ["Q one", "Q three", "Q two"]
    gens = run.generations()
    by_prompt = {(texts[r.prompt_id], r.model): r.text for r in gens.itertuples()}
    assert by_prompt[("Q two", "model-a")] == "A to Q two" and by_prompt[("Q two", "model-b")] == "B to Q two "


def test_a_run_of_imports_holds_no_phantom_judge_and_its_real_output_dir(tmp_path):
    """The config.yaml imports write names the folder the run is in (not 'results') and no judge: none judged
    anything (it used to hold the default hf lima-pairwise judge with no model). Judgments imported after the
    answers, and answers after judgments, keep it so."""
    import yaml

    from lima_eval.answers import import_answers
    from lima_eval.judging.foreign import import_judgments
    from lima_eval.run import Run

    answers = tmp_path / "a.jsonl"
    answers.write_text(json.dumps({"instruction": "Q one", "output": "A"}) + "\n")
    labels = tmp_path / "j.json"
    labels.write_text(json.dumps([{"instruction": "Q one", "output_1": "b", "generator_1": "base", "output_2": "m",
                                   "generator_2": "model-a", "annotator": "ann", "preference": 2.0}]))
    for first, then in (("answers", "judgments"), ("judgments", "answers")):
        run_dir = tmp_path / "runs" / first
        for step in (first, then):
            if step == "answers":
                import_answers(run_dir, answers, "model-a")
            else:
                import_judgments(run_dir, labels, "alpaca-eval")
            written = yaml.safe_load((run_dir / "config.yaml").read_text())
            assert "judge" not in written and "judges" not in written, (first, step)
            assert (written["output_dir"], written["name"]) == (str(tmp_path / "runs"), first)
        assert Run(run_dir).config.run_dir == run_dir


def test_an_imported_model_needs_no_model_key(tmp_path):
    from lima_eval.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("name: t\nmodels:\n  - {name: ext, backend: imported}\n  - {name: base, backend: scripted, "
                    "model: 'fixed:ok'}\nbaselines: [base]\n")
    assert load_config(path).model("ext").model == ""
