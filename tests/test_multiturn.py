"""Multi-turn generation: turn 2 sees the model's own turn-1 answer; a rerun resumes mid-conversation."""

import json

from conftest import longer_answer_judge, server_run_config

from lima_eval.benchmarks import load_prompts
from lima_eval.config import BenchmarkSpec, load_config
from lima_eval.pipeline import run
from lima_eval.store import RunStore
from lima_eval.testing.openai_server import OpenAITestServer


def responder(body):
    msgs = body["messages"]
    if "[Answer A]" in msgs[-1]["content"]:
        return longer_answer_judge(body)
    return f"{body['model']} answers turn {len(msgs) // 2 + 1}: {msgs[-1]['content'][:30]}"


def test_mt_bench_questions_load_with_both_turns(shared_data):
    prompts = load_prompts(BenchmarkSpec(name="mt-bench", path=str(shared_data / "mt_bench/question.jsonl")))
    assert len(prompts) == 80 and all(len(p.user_turns) == 2 for p in prompts)
    assert prompts[0].id == "81" and prompts[0].text == prompts[0].turns[0]


def test_second_turn_sees_first_answer_and_resume_mid_conversation(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"question_id": i, "category": "x",
                                             "turns": [f"First question {i}?", f"Follow-up {i}?"]}) + "\n"
                                 for i in range(5)))
    fail_second_turn = {"on": True}

    def fault(n, body):
        if fail_second_turn["on"] and len(body["messages"]) == 3:
            return ("500", None)
        return None

    with OpenAITestServer(responder=responder, fault=fault) as server:
        cfg_path = server_run_config(tmp_path, server.base_url, {"name": "mt-bench", "path": str(questions)},
                                     name="mt", endpoint={"concurrency": 2}, model_ids=("m1", "m2"),
                                     judge={"model": "j"})
        first = run(load_config(cfg_path), show_progress=False)
        assert (first.generations.new, first.generations.errors) == (20, 10)  # every turn-2 request failed
        before = server.requests
        fail_second_turn["on"] = False
        second = run(load_config(cfg_path), show_progress=False)
        assert (second.generations.new, second.generations.errors, second.generations.cached) == (10, 0, 10)
        turn2 = server.bodies[before:]
        assert len([b for b in turn2 if len(b["messages"]) == 3]) == 10  # only the missing turns were asked

    gens = RunStore(tmp_path / "results" / "mt").generations().values()
    first_answers = {(g.model, g.prompt_id): g.text for g in gens if g.turn == 0}
    for body in turn2:
        if len(body["messages"]) != 3:
            continue
        user1, assistant1, user2 = body["messages"]
        qid = user1["content"].split()[-1].rstrip("?")
        model = {"m1": "mine", "m2": "base"}[body["model"]]
        assert assistant1 == {"role": "assistant", "content": first_answers[(model, qid)]}
        assert user2["content"] == f"Follow-up {qid}?"
    final = {(g.model, g.prompt_id): g.text for g in gens if g.turn == 1 and not g.error}
    assert len(final) == 10 and all("answers turn 2" in t for t in final.values())
