"""The judging stage against a real local OpenAI-compatible server: every judge kind, order both, logprob
verdicts, concurrency, retries, failures that end the run non-zero, the persistent cache and costs."""

import json
import re

import pytest
from conftest import run_cli, server_run_config

from lima_eval.config import load_config
from lima_eval.pipeline import run
from lima_eval.report.metrics import combine_orders
from lima_eval.store import RunStore
from lima_eval.testing.openai_server import OpenAITestServer

ANSWERS = {"mine": "a long and careful answer", "base": "short"}


def user_text(body):
    return [m for m in body["messages"] if m["role"] == "user"][-1]["content"]


def judge(body):
    """A deterministic test judge for every shipped template: the longer answer wins / rates higher.
    Model calls (no template) answer with ANSWERS[model] (the model name is the `model` field)."""
    text = user_text(body)
    if "[Answer A]" in text:
        m = re.search(r"\[Answer A\]\n(.*)\n\n\[Answer B\]\n(.*)\n\nReply with", text, re.DOTALL)
        if "NO-VERDICT" in text:
            return "I cannot decide."
        a, b = len(m.group(1)), len(m.group(2))
        return "Verdict: neither" if a == b else ("Verdict: A" if a > b else "Verdict: B")
    if "[Conversation with assistant A]" in text:
        a = re.search(r"Assistant A: (.*)\n\n\[Conversation with assistant B\]", text, re.DOTALL).group(1)
        b = re.search(r"Assistant B: (.*)\n\nReply with", text, re.DOTALL).group(1)
        second_a, second_b = a.split("\nAssistant A: ")[-1], b.split("\nAssistant B: ")[-1]
        return "Verdict: tie" if len(second_a) == len(second_b) else (
            "Verdict: A" if len(second_a) > len(second_b) else "Verdict: B")
    if "[Answer]" in text:
        answer = re.search(r"\[Answer\]\n(.*)\n\nReply with", text, re.DOTALL).group(1)
        if "three-point scale" in text:
            return "Rating: excellent" if len(answer) > 10 else "Rating: fail"
        return "Rating: 6" if len(answer) > 10 else "Rating: 2"
    return ANSWERS[body["model"]]


def config(tmp_path, server, prompts_file, name="run", judge_extra=None, judges=(), benchmark=None,
           model_extra=None):
    return server_run_config(tmp_path, server.base_url, benchmark or {"name": "file", "path": str(prompts_file)},
                             name=name, model_extra=model_extra, judge=judge_extra, judges=judges)


def test_order_both_stores_two_judgments_per_pair_and_combines_by_the_rule(tmp_path, prompts_file):
    with OpenAITestServer(responder=judge) as server:
        cfg = load_config(config(tmp_path, server, prompts_file, judge_extra={"order": "both"}))
        result = run(cfg, show_progress=False)
    store = RunStore(cfg.run_dir)
    judgments = list(store.judgments().values())
    assert result.judgments.new == 12 and len(judgments) == 12  # 6 prompts x 2 orders
    by_prompt = {}
    for j in judgments:
        by_prompt.setdefault(j.prompt_id, set()).add(j.shown_first)
    assert all(orders == {"a", "b"} for orders in by_prompt.values())
    summary = json.loads((cfg.run_dir / "report" / "summary.json").read_text())
    row = summary["rows"][0]
    assert (row["win"], row["tie"], row["loss"], row["errors"]) == (5, 0, 0, 1)  # p4: no verdict in either order
    card = summary["judges"][0]
    assert card["order"] == "both" and card["pairs_both_orders"] == 5 and card["position_consistency"] == 1.0


def test_combination_rules_on_disagreeing_orders():
    from lima_eval.records import Judgment

    def j(first, verdict):
        return Judgment(id=first, prompt_id="p", model_a="m", model_b="b", judge="J", verdict=verdict,
                        shown_first=first, generation_a="ga", generation_b="gb")

    disagree = [j("a", "a"), j("b", "b")]  # each order prefers the answer shown first
    assert [x.verdict for x in combine_orders(disagree, "tie")] == ["tie"]
    assert sorted(x.verdict for x in combine_orders(disagree, "separate")) == ["a", "b"]
    assert [x.verdict for x in combine_orders([j("a", "b"), j("b", "b")], "tie")] == ["b"]
    one_error = combine_orders([j("a", "a"), j("b", None)], "tie")
    assert len(one_error) == 1 and one_error[0].verdict is None


def test_position_bias_is_measured(tmp_path, prompts_file):
    """A judge that always picks the first answer: consistency 0, first-shown wins 100%, every pair a tie."""
    def biased(body):
        return "Verdict: A" if "[Answer A]" in user_text(body) else ANSWERS[body["model"]]

    with OpenAITestServer(responder=biased) as server:
        cfg = load_config(config(tmp_path, server, prompts_file, judge_extra={"order": "both"}))
        run(cfg, show_progress=False)
    summary = json.loads((cfg.run_dir / "report" / "summary.json").read_text())
    assert summary["rows"][0]["tie"] == 6 and summary["rows"][0]["win"] == 0
    card = summary["judges"][0]
    assert card["position_consistency"] == 0.0 and card["first_position_win_rate"] == 1.0


def test_rating_judges_and_the_multi_turn_judge(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"question_id": i, "turns": [f"Q{i}?", f"Follow {i}?"]}) + "\n"
                                 for i in range(3)))
    with OpenAITestServer(responder=judge) as server:
        path = config(tmp_path, server, None, benchmark={"name": "mt-bench", "path": str(questions)},
                      judge_extra={"name": "mt-bench-pair"},
                      judges=[{"name": "lima-absolute"}, {"name": "lima-likert"}])
        cfg = load_config(path)
        run(cfg, show_progress=False)
    store = RunStore(cfg.run_dir)
    judgments = list(store.judgments().values())
    assert len(judgments) == 3 and all(j.turn == 1 and j.verdict == "a" for j in judgments)
    ratings = list(store.ratings().values())
    assert len(ratings) == 12  # 2 judges x 2 models x 3 prompts
    absolute = {r.model: r.label for r in ratings if r.scale == "absolute"}
    assert absolute == {"mine": "excellent", "base": "fail"}
    likert = {r.model: r.score for r in ratings if r.scale == "likert"}
    assert likert == {"mine": 6.0, "base": 2.0}
    summary = json.loads((cfg.run_dir / "report" / "summary.json").read_text())
    mine_abs = next(r for r in summary["ratings"] if r["model"] == "mine" and r["scale"] == "absolute")
    assert (mine_abs["counts"] == {"fail": 0, "pass": 0, "excellent": 3}
            and mine_abs["shares"]["excellent"]["share"] == 1.0)
    md = (cfg.run_dir / "report" / "report.md").read_text()
    assert "## Absolute ratings" in md and "| excellent |" in md.replace(" | excellent |", "| excellent |")


def logprob_judge(body):
    """Replies 'Verdict: B' in text, but its probabilities favour A at the verdict token."""
    if "[Answer A]" not in user_text(body):
        return ANSWERS[body["model"]]
    content = [
        {"token": "Verdict", "logprob": -0.01, "top_logprobs": [{"token": "Verdict", "logprob": -0.01}]},
        {"token": ":", "logprob": -0.01, "top_logprobs": [{"token": ":", "logprob": -0.01}]},
        {"token": " B", "logprob": -0.9, "top_logprobs": [{"token": " A", "logprob": -0.6},
                                                         {"token": " B", "logprob": -0.9},
                                                         {"token": " neither", "logprob": -3.0},
                                                         {"token": " The", "logprob": -4.0}]},
    ]
    return "Verdict: B", content


def test_logprob_verdicts_store_probabilities(tmp_path, prompts_file):
    with OpenAITestServer(responder=logprob_judge) as server:
        cfg = load_config(config(tmp_path, server, prompts_file, judge_extra={"logprobs": True, "top_logprobs": 5}))
        run(cfg, show_progress=False)
        judge_bodies = [b for b in server.bodies if b.get("logprobs")]
    assert len(judge_bodies) == 6 and all(b["top_logprobs"] == 5 for b in judge_bodies)
    for j in RunStore(cfg.run_dir).judgments().values():
        first_is_a = j.shown_first == "a"
        assert j.probs is not None and abs(sum(j.probs.values()) - 1) < 1e-6
        # The verdict is the option the reply shows (B, the answer shown second: the token the judge emitted),
        # so the stored text and the verdict agree; the probabilities (A most likely) are its confidence and
        # give the soft score the win rate averages.
        assert j.verdict == ("b" if first_is_a else "a") and j.raw.endswith("B")
        shown_first_p = j.probs["a" if first_is_a else "b"]
        assert shown_first_p == pytest.approx(0.5488 / (0.5488 + 0.4066 + 0.0498), abs=1e-3)


def test_concurrency_bound_is_respected(tmp_path, prompts_file):
    with OpenAITestServer(responder=judge, latency=0.15) as server:
        cfg = load_config(config(tmp_path, server, prompts_file, judge_extra={"concurrency": 3},
                                 model_extra={"concurrency": 1}))
        run(cfg, show_progress=False)
    assert server.max_in_flight == 3  # 6 judge requests of 150 ms each, at most 3 at a time


def test_429_storms_and_500s_lose_nothing(tmp_path, prompts_file):
    def storm(n, body):
        if "[Answer A]" not in user_text(body):
            return None
        return ("429", 0) if n % 3 == 0 else ("500", None) if n % 3 == 1 else None

    with OpenAITestServer(responder=judge, fault=storm) as server:
        cfg = load_config(config(tmp_path, server, prompts_file, judge_extra={"max_retries": 8, "concurrency": 3}))
        result = run(cfg, show_progress=False)
        assert server.requests > 12 + 6  # faults were served and retried
    judgments = RunStore(cfg.run_dir).judgments().values()
    assert len(judgments) == 6 and result.judgments.failed_calls == 0
    assert sum(1 for j in judgments if j.verdict) == 5  # p4 is the judge's own refusal, not a lost item


def test_failed_calls_end_the_run_non_zero_and_a_rerun_retries_only_them(tmp_path, prompts_file):
    broken = {"on": True}

    def fault(n, body):
        text = user_text(body)
        if broken["on"] and "[Answer A]" in text and ("two plus two" in text or "fruit" in text):
            return ("500", None)
        if "[Answer A]" in text and "Describe rain" in text:
            return ("malformed", None) if broken["on"] else None
        return None

    with OpenAITestServer(responder=judge, fault=fault) as server:
        path = config(tmp_path, server, prompts_file)
        first = run_cli("run", str(path), "--no-progress")
        assert first.returncode == 1
        assert "3 judge call(s) failed after every retry" in first.stderr
        lines = [json.loads(x) for x in (tmp_path / "results/run/judgments.jsonl").read_text().splitlines()]
        errors = {x["prompt_id"]: x["error"] for x in lines if x["error_kind"] == "call"}
        assert set(errors) == {"p3", "p5", "p6"} and "malformed" in errors["p6"] and "500" in errors["p3"]
        broken["on"] = False
        before = server.requests
        second = run_cli("run", str(path), "--no-progress")
        assert second.returncode == 0, second.stderr
        assert server.requests - before == 3  # only the failed items were asked again
    final = RunStore(tmp_path / "results/run").judgments()
    assert sum(1 for j in final.values() if j.error_kind == "call") == 0


def test_cache_never_pays_twice_across_runs_and_no_cache_bypasses_it(tmp_path, prompts_file):
    with OpenAITestServer(responder=judge) as server:
        run(load_config(config(tmp_path, server, prompts_file, name="one")), show_progress=False)
        judge_requests = sum(1 for b in server.bodies if "[Answer A]" in user_text(b))
        assert judge_requests == 6
        # A new results directory: generations are made again, the judge replies come from the cache.
        path = config(tmp_path, server, prompts_file, name="two")
        result = run_cli("run", str(path), "--no-progress")
        assert result.returncode == 0, result.stderr
        assert sum(1 for b in server.bodies if "[Answer A]" in user_text(b)) == 6
        assert "(6 from the judge cache)" in result.stderr
        cached = RunStore(tmp_path / "results/two").judgments().values()
        assert len(cached) == 6 and all(j.cached for j in cached)
        third = run_cli("run", str(config(tmp_path, server, prompts_file, name="three")), "--no-progress",
                        "--no-cache")
        assert third.returncode == 0
        assert sum(1 for b in server.bodies if "[Answer A]" in user_text(b)) == 12


def test_cost_from_the_price_table(tmp_path, prompts_file):
    with OpenAITestServer(responder=judge) as server:
        cfg = load_config(config(tmp_path, server, prompts_file))
        run(cfg, show_progress=False)
    summary = json.loads((cfg.run_dir / "report" / "summary.json").read_text())
    card = summary["judges"][0]
    # The test server reports 10 prompt tokens and one completion token per word of the reply.
    assert card["prompt_tokens"] == 60
    expected = (card["prompt_tokens"] * 2.50 + card["completion_tokens"] * 10.00) / 1e6
    assert card["cost_usd"] == pytest.approx(expected) and card["cost_usd"] > 0
