"""Checklist judges (WildBench style: yes / no per criterion of a prompt's checklist) and rubric judges
(Prometheus style: a 1-5 score by the prompt's own rubric), against the local OpenAI-compatible server."""

from __future__ import annotations

import json
import re

import pytest
from conftest import run_cli, write_config

from lima_eval.judging.parsers import parse_checklist, parse_prometheus
from lima_eval.testing.openai_server import OpenAITestServer

PROMPTS = [
    {"id": "c1", "prompt": "Name three primary colours.", "checklist": ["mentions red", "mentions blue",
                                                                         "mentions yellow"]},
    {"id": "c2", "prompt": "Give a fruit and its colour.", "checklist": ["names a fruit", "gives a colour"],
     "rubric": {"1": "no fruit", "3": "a fruit without its colour", "5": "a fruit and its colour"}},
    {"id": "c3", "prompt": "Say hello.", "rubric": "5: a friendly greeting; 1: anything else"},
]
ANSWERS = {"one": "red, blue and green; a fruit", "two": "yellow"}


@pytest.mark.parametrize("text,n,marks", [
    ("1: yes\n2: no", 2, [True, False]), ("1. Yes\n2) no\n3 - yes", 3, [True, False, True]),
    ("**1:** yes\n**2:** no", 2, [True, False]), ("Criterion 1: no\nCriterion 2: yes", 2, [False, True]),
    ("1: yes\n3: no", 3, None), ("all good", 1, None), ("", 2, None),
])
def test_the_checklist_reply_parser(text, n, marks):
    assert parse_checklist(text, n)[0] == marks


@pytest.mark.parametrize("text,score", [("Feedback... [RESULT] 4", "4"), ("Rating: 2", "2"), ("[RESULT] 7", None)])
def test_the_rubric_parser(text, score):
    assert parse_prometheus(text)[0] == score


def judge(body):
    """Checklist: yes where the criterion's last word is in the answer. Rubric: 5 when the answer is long, else 2."""
    text = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    if body["model"] in ANSWERS:
        return ANSWERS[body["model"]]
    answer = re.search(r"\[Answer\]\n(.*?)\n\n", text, re.DOTALL).group(1)
    if "[Checklist]" in text:
        items = re.findall(r"^(\d+)\. (.*)$", text.split("[Checklist]\n", 1)[1], re.MULTILINE)
        return "\n".join(f"{n}: {'yes' if c.split()[-1] in answer else 'no'}" for n, c in items)
    return "Looks fine. [RESULT] " + ("5" if len(answer) > 10 else "2")


def make_run(tmp_path, server, judges):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in PROMPTS))
    ep = {"backend": "openai", "base_url": server.base_url, "max_retries": 0}
    data = {"name": "cl", "output_dir": str(tmp_path / "results"), "benchmark": {"name": "file", "path": str(prompts)},
            "models": [{"name": m, "model": m, **ep} for m in ANSWERS], "baselines": ["two"],
            "judge": {"backend": "scripted", "model": "fixed:Verdict: A"},
            "judges": [ep | {"name": j, "model": "gpt-4o"} for j in judges]}
    out = run_cli("run", str(write_config(tmp_path / "c.yaml", data)), "--no-progress")
    assert out.returncode == 0, out.stderr
    return tmp_path / "results" / "cl"


def test_checklist_verdicts_per_criterion_and_the_share_met(tmp_path):
    bodies = []
    with OpenAITestServer(responder=lambda b: (bodies.append(b), judge(b))[1]) as server:
        run_dir = make_run(tmp_path, server, ["checklist"])
    asked = [b for b in bodies if "[Checklist]" in b["messages"][-1]["content"]]
    assert len(asked) == 4  # 2 prompts with a checklist x 2 models; c3 has none
    ratings = [json.loads(x) for x in (run_dir / "ratings.jsonl").read_text().splitlines()]
    one_c1 = next(r for r in ratings if r["model"] == "one" and r["prompt_id"] == "c1")
    assert one_c1["criteria"] == {"mentions red": True, "mentions blue": True, "mentions yellow": False}
    assert (one_c1["label"], one_c1["score"]) == ("2/3", pytest.approx(2 / 3, abs=1e-6))
    rows = {r["model"]: r for r in json.loads((run_dir / "report" / "summary.json").read_text())["checklist"]}
    # one: red, blue (c1) + fruit (c2) = 3 of 5; two: yellow (c1) = 1 of 5.
    assert (rows["one"]["met"], rows["one"]["criteria"], rows["one"]["share"]) == (3, 5, 0.6)
    assert (rows["two"]["met"], rows["two"]["share"]) == (1, 0.2)
    md = (run_dir / "report" / "report.md").read_text()
    assert "## Checklists" in md and "| checklist:gpt-4o | one | 2 | 60.0" in md


def test_rubric_scores_by_the_prompts_own_rubric(tmp_path):
    bodies = []
    with OpenAITestServer(responder=lambda b: (bodies.append(b), judge(b))[1]) as server:
        run_dir = make_run(tmp_path, server, ["rubric"])
    asked = [b["messages"][-1]["content"] for b in bodies if "[Rubric]" in b["messages"][-1]["content"]]
    assert len(asked) == 4 and any("3: a fruit without its colour" in t for t in asked)
    ratings = [json.loads(x) for x in (run_dir / "ratings.jsonl").read_text().splitlines()]
    assert sorted((r["model"], r["prompt_id"], r["label"]) for r in ratings) == [
        ("one", "c2", "5"), ("one", "c3", "5"), ("two", "c2", "2"), ("two", "c3", "2")]


def test_an_unreadable_checklist_reply_is_an_error_not_a_no(tmp_path):
    with OpenAITestServer(responder=lambda b: ANSWERS.get(b["model"], "1: yes")) as server:
        run_dir = make_run(tmp_path, server, ["checklist"])
    ratings = [json.loads(x) for x in (run_dir / "ratings.jsonl").read_text().splitlines()]
    assert all(r["error_kind"] == "parse" and r["criteria"] is None for r in ratings)
    (row, _) = json.loads((run_dir / "report" / "summary.json").read_text())["checklist"]
    assert row["errors"] == 2 and row["share"] is None


@pytest.mark.parametrize("row,message", [
    ({"id": "x", "prompt": "p", "checklist": "mentions red"}, "line 1, field 'checklist'"),
    ({"id": "x", "prompt": "p", "checklist": ["ok", ""]}, "line 1, field 'checklist'"),
    ({"id": "x", "prompt": "p", "rubric": 5}, "line 1, field 'rubric'"),
    ({"id": "x", "prompt": "p", "reference": {"a": 1}}, "line 1, field 'reference'"),
])
def test_bad_checklists_and_rubrics_are_named(tmp_path, row, message):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps(row) + "\n")
    data = {"name": "bad", "output_dir": str(tmp_path / "results"), "benchmark": {"name": "file", "path": str(prompts)},
            "models": [{"name": n, "backend": "scripted", "model": "echo"} for n in ("a", "b")], "baselines": ["b"]}
    out = run_cli("run", str(write_config(tmp_path / "c.yaml", data)), "--no-progress")
    assert out.returncode != 0 and message in out.stderr, out.stderr
    assert not (tmp_path / "results").exists()
