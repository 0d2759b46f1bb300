"""MT-bench's own numbers: single-answer grading of both turns (1-10, `[[rating]]`), the MT-bench score per
category and overall with intervals in the report and the leaderboard, reference-guided grading with MT-bench's
reference answers, and the import of FastChat's single-grade files. Real MT-bench questions and two real models'
answers from ../shared/data; the judge is the local OpenAI-compatible server, grading by a rule."""

from __future__ import annotations

import csv
import json
import re

import pytest
from conftest import run_cli, write_config

from lima_eval.judging.parsers import parse_mt_bench_rating
from lima_eval.testing.openai_server import OpenAITestServer

MODELS = ("gpt-4", "vicuna-13b-v1.3")
GRADES = {("gpt-4", 0): 9, ("gpt-4", 1): 8, ("vicuna-13b-v1.3", 0): 6, ("vicuna-13b-v1.3", 1): 4}


@pytest.mark.parametrize("text,grade", [
    ("Rating: [[7]]", "7"), ("[[10]] great", "10"), ("Rating: [[7.0]]", "7"), ("first [[3]], on reflection [[8]]", "8"),
    ("Rating: 6", "6"), ("[[7.5]]", None), ("[[11]]", None), ("[[0]]", None), ("no grade", None), ("", None),
])
def test_the_mt_bench_grade_parser(text, grade):
    assert parse_mt_bench_rating(text)[0] == grade


def answers_by_text(shared_data):
    """answer text -> (model, turn) for the two models' real MT-bench answers."""
    out = {}
    for m in MODELS:
        for line in (shared_data / f"mt_bench/model_answer/{m}.jsonl").open():
            row = json.loads(line)
            for t, text in enumerate(row["choices"][0]["turns"]):
                out[text.strip()] = (m, t)
    return out


def grader(shared_data, seen):
    texts = answers_by_text(shared_data)

    def reply(body):
        text = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
        if "Rating: [[N]]" not in text:
            return "no such model here"
        seen.append(text)
        graded = re.search(r"\[The assistant's (?:answer to the follow-up|answer)\]\n(.*)\n\nGive your rating", text,
                           re.DOTALL).group(1).strip()
        model, turn = texts[graded]
        return f"Rating: [[{GRADES[(model, turn)]}]] because."
    return reply


def mt_run(tmp_path, shared_data, server, judges, limit=16, references=None, name="mt"):
    ep = {"backend": "openai", "base_url": server.base_url, "max_retries": 0, "model": "gpt-4-judge",
          "cache": False}
    bench = {"name": "mt-bench", "path": str(shared_data / "mt_bench/question.jsonl"), "limit": limit}
    if references:
        bench["references"] = references
    data = {"name": name, "output_dir": str(tmp_path / "results"), "benchmark": bench,
            "models": [{"name": m, "backend": "imported"} for m in MODELS], "baselines": [MODELS[1]],
            "judge": {"name": "mt-bench-pair", "backend": "scripted", "model": "fixed:Verdict: tie"},
            "judges": [ep | {"name": j} for j in judges]}
    cfg = write_config(tmp_path / f"{name}.yaml", data)
    assert run_cli("run", str(cfg), "--no-progress").returncode == 0
    for m in MODELS:
        out = run_cli("import-answers", str(tmp_path / "results" / name),
                      str(shared_data / f"mt_bench/model_answer/{m}.jsonl"), "--model", m)
        assert out.returncode == 0, out.stderr
    out = run_cli("run", str(cfg), "--no-progress")
    assert out.returncode == 0, out.stderr
    return tmp_path / "results" / name


def test_both_turns_graded_and_the_mt_bench_score(shared_data, tmp_path):
    seen: list[str] = []
    with OpenAITestServer(responder=grader(shared_data, seen)) as server:
        run_dir = mt_run(tmp_path, shared_data, server, ["mt-bench-single", "mt-bench-single-multiturn"])
    assert len(seen) == 2 * 2 * 16  # 2 models x 2 turns x 16 questions
    # The turn-2 prompt shows the first turn as context and grades the follow-up answer.
    assert sum("[Follow-up question]" in t for t in seen) == 32
    summary = json.loads((run_dir / "report" / "summary.json").read_text())
    rows = {r["model"]: r for r in summary["mt_bench"]}
    gpt, vic = rows["gpt-4"], rows["vicuna-13b-v1.3"]
    assert gpt["judge"] == "mt-bench:gpt-4-judge" and gpt["judges"] == ["mt-bench-single-multiturn:gpt-4-judge",
                                                                      "mt-bench-single:gpt-4-judge"]
    assert (gpt["turn_1"]["score"], gpt["turn_2"]["score"], gpt["overall"]["score"]) == (9.0, 8.0, 8.5)
    assert (vic["turn_1"]["score"], vic["turn_2"]["score"], vic["overall"]["score"]) == (6.0, 4.0, 5.0)
    assert gpt["overall"]["n"] == 32 and gpt["overall"]["ci"][0] < 8.5 < gpt["overall"]["ci"][1]
    # The first 16 questions: 10 writing, 6 roleplay; each category has its mean.
    assert set(gpt["categories"]) == {"writing", "roleplay"} and gpt["categories"]["writing"]["score"] == 8.5
    md = (run_dir / "report" / "report.md").read_text()
    assert "## MT-bench score" in md and "| mt-bench:gpt-4-judge | gpt-4 | 8.50 [" in md
    out = run_cli("leaderboard", str(tmp_path / "results"))
    assert out.returncode == 0, out.stderr
    board = list(csv.DictReader((tmp_path / "results" / "leaderboard" / "mt_bench.csv").open()))
    assert [(r["model"], float(r["score"])) for r in board] == [("gpt-4", 8.5), ("vicuna-13b-v1.3", 5.0)]
    assert "## MT-bench score" in (tmp_path / "results" / "leaderboard" / "leaderboard.md").read_text()


def test_reference_guided_grading_sees_mt_bench_references(shared_data, tmp_path):
    """The first 30 questions are writing, roleplay and reasoning. The 10 reasoning ones have GPT-4 references
    (the reference file), and question 95 (a translation) carries its own `reference` in question.jsonl: 11."""
    seen: list[str] = []
    refs = {json.loads(x)["question_id"]: json.loads(x)["choices"][0]["turns"]
            for x in (shared_data / "mt_bench/reference_answer_gpt-4.jsonl").open()}
    with OpenAITestServer(responder=grader(shared_data, seen)) as server:
        run_dir = mt_run(tmp_path, shared_data, server, ["mt-bench-single-ref", "mt-bench-single-ref-multiturn"],
                         limit=30, references=str(shared_data / "mt_bench/reference_answer_gpt-4.jsonl"))
    assert len(seen) == 11 * 2 * 2
    own = [json.loads(x) for x in (shared_data / "mt_bench/question.jsonl").open()][14]["reference"]
    assert all(any(r[0] in t for r in [*refs.values(), own]) for t in seen)  # every prompt shows its reference
    assert sum(refs[101][1] in t for t in seen) == 2  # turn 2 shows the follow-up's reference (both models)
    (gpt,) = [r for r in json.loads((run_dir / "report" / "summary.json").read_text())["mt_bench"]
              if r["model"] == "gpt-4"]
    assert gpt["overall"]["n"] == 22 and set(gpt["categories"]) == {"reasoning", "roleplay"}


def test_reference_guided_pairwise(shared_data, tmp_path):
    bodies = []

    def judge(body):
        bodies.append(body)
        return "Verdict: A"

    with OpenAITestServer(responder=judge) as server:
        ep = {"backend": "openai", "base_url": server.base_url, "max_retries": 0, "model": "gpt-4-judge"}
        data = {"name": "pr", "output_dir": str(tmp_path / "results"),
                "benchmark": {"name": "mt-bench", "path": str(shared_data / "mt_bench/question.jsonl"),
                              "references": str(shared_data / "mt_bench/reference_answer_gpt-4.jsonl")},
                "models": [{"name": "a", "backend": "scripted", "model": "echo"},
                           {"name": "b", "backend": "scripted", "model": "fixed:42"}], "baselines": ["b"],
                "judge": ep | {"name": "mt-bench-pair-ref", "order": "random"}}
        out = run_cli("run", str(write_config(tmp_path / "c.yaml", data)), "--no-progress")
    assert out.returncode == 0, out.stderr
    qs = [json.loads(x) for x in (shared_data / "mt_bench/question.jsonl").open()]
    refs = {json.loads(x)["question_id"] for x in (shared_data / "mt_bench/reference_answer_gpt-4.jsonl").open()}
    with_two = sum(1 for q in qs if q["question_id"] in refs or len(q.get("reference", [])) >= 2)
    assert with_two == 40  # the reference file's 30 and ten more that carry their own in question.jsonl
    assert len(bodies) == with_two and all("[Reference answer to the follow-up]" in b["messages"][-1]["content"]
                                     for b in bodies)


def single_grades(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_import_fastchat_single_grades(shared_data, tmp_path):
    rows = []
    for qid in (81, 82, 101):
        for turn in (1, 2):
            for model, base in (("gpt-4", 8), ("llama-13b", 3)):
                rows.append({"question_id": qid, "model": model, "judge": ["gpt-4", "single-v1" if turn == 1 else
                             "single-v1-multi-turn"], "user_prompt": "...", "judgment": f"ok [[{base + turn}]]",
                             "score": base + turn if (qid, model, turn) != (101, "llama-13b", 2) else -1,
                             "turn": turn, "tstamp": 0})
    path = single_grades(tmp_path / "gpt-4_single.jsonl", rows)
    run_dir = tmp_path / "results" / "imports"
    out = run_cli("import-judgments", str(run_dir), str(path), "--format", "mt-bench-single")
    assert out.returncode == 0, out.stderr
    summary = json.loads((run_dir / "report" / "summary.json").read_text())
    rows_by = {r["model"]: r for r in summary["mt_bench"]}
    assert rows_by["gpt-4"]["overall"]["score"] == 9.5 and rows_by["gpt-4"]["overall"]["n"] == 6
    assert rows_by["llama-13b"]["overall"]["n"] == 5 and rows_by["llama-13b"]["errors"] == 1
    again = run_cli("import-judgments", str(run_dir), str(path), "--format", "mt-bench-single")
    assert again.returncode == 0 and len((run_dir / "imported_ratings.jsonl").read_text().splitlines()) == 12


@pytest.mark.parametrize("change,message", [
    ({"score": 11}, "line 1, field 'score': 11 is not a grade from 1 to 10"),
    ({"turn": 3}, "line 1, field 'turn': 3 is not 1 or 2"),
    ({"judge": 5}, "line 1, field 'judge'"),
    ({"model": None}, "line 1, field 'model'"),
    ({"question_id": 1.5}, "line 1, field 'question_id'"),
])
def test_bad_single_grade_rows_are_named(tmp_path, change, message):
    row = {"question_id": 81, "model": "m", "judge": ["gpt-4", "single-v1"], "score": 5, "turn": 1}
    path = single_grades(tmp_path / "g.jsonl", [row | change])
    out = run_cli("import-judgments", str(tmp_path / "run"), str(path), "--format", "mt-bench-single")
    assert out.returncode != 0 and message in out.stderr, out.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kind,template,message", [
    ("rating-multiturn", "{question_1} {answer_1} {question_2}", "must use exactly {answer_1}, {answer_2}"),
    ("rating-multiturn", "{question_1} {answer_1} {question_2} {answer_2} {reference}", "it uses"),
    ("rating", "{prompt} {answer} {reference_2}", "may use {reference}"),
])
def test_bad_reference_templates_are_named(tmp_path, kind, template, message):
    folder = tmp_path / "j"
    folder.mkdir()
    (folder / "judge.yaml").write_text(f"kind: {kind}\nparser: mt-bench-rating\nlabels: ['1', '2']\n")
    (folder / "prompt.txt").write_text(template)
    from lima_eval.errors import LimaEvalError
    from lima_eval.judging.definitions import read_folder

    with pytest.raises(LimaEvalError) as err:
        read_folder(folder, "j")
    assert message in str(err.value)
