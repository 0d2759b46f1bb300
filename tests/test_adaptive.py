"""Adaptive judging: the confidence sequence's error rate under peeking, `order: both-if-close` and
`stop_when_decided` on the local OpenAI-compatible server, and the bad configs."""

from __future__ import annotations

import json
import math
import random
import re

import pytest
from conftest import assert_one_line_error, run_cli, server_run_config, write_config

from lima_eval.config import load_config
from lima_eval.judging.adaptive import decided, interval, is_close, prompt_order, radius, tuned_rho
from lima_eval.pipeline import run
from lima_eval.records import Judgment
from lima_eval.store import RunStore
from lima_eval.testing.openai_server import OpenAITestServer


def test_the_sequence_holds_its_error_rate_under_peeking_where_a_fixed_interval_does_not():
    # A judge with no preference (win rate exactly 0.5), looked at after every prompt up to 400: the share of
    # runs in which the interval ever excludes 0.5 is the error rate of stopping at the first exclusion.
    rng = random.Random(7)
    runs, n, alpha = 300, 400, 0.05
    rho = tuned_rho(n, alpha)
    sequence_errors = naive_errors = 0
    for _ in range(runs):
        total, seq_hit, naive_hit = 0.0, False, False
        for k in range(1, n + 1):
            total += rng.choice((0.0, 0.5, 1.0))
            mean = total / k
            seq_hit |= abs(mean - 0.5) > radius(k, alpha, rho)
            naive_hit |= k >= 10 and abs(mean - 0.5) > 1.96 * math.sqrt(1 / 6 / k)  # the true variance is 1/6
        sequence_errors += seq_hit
        naive_errors += naive_hit
    assert sequence_errors / runs <= alpha
    assert naive_errors / runs > 3 * alpha  # peeking at a fixed-n interval: several times its nominal 5%


def test_interval_pieces():
    assert radius(0, 0.05, 1.0) == math.inf and radius(400, 0.05, 10) < radius(100, 0.05, 10)
    rho = tuned_rho(300, 0.05)
    assert radius(300, 0.05, rho) <= min(radius(300, 0.05, rho * 3), radius(300, 0.05, rho / 3))
    mean, low, high = interval([1.0] * 40, 0.95, 200)
    assert mean == 1.0 and high == 1.0 and 0.5 < low < 1.0
    assert decided(0.6, 0.9, 0.5) == "above" and decided(0.1, 0.4, 0.5) == "below" and decided(0.4, 0.6, 0.5) is None
    order = prompt_order(3, ["p1", "p2", "p3", "p4"])
    assert sorted(order) == ["p1", "p2", "p3", "p4"] and order == prompt_order(3, ["p4", "p3", "p2", "p1"])
    assert prompt_order(4, [f"p{i}" for i in range(20)]) != prompt_order(3, [f"p{i}" for i in range(20)])


@pytest.mark.parametrize("verdict, probs, close", [
    ("tie", None, True), ("a", None, False), (None, None, False),
    ("a", {"a": 0.9, "b": 0.05, "tie": 0.05}, False), ("a", {"a": 0.6, "b": 0.35, "tie": 0.05}, True),
    ("b", {"a": 0.2, "b": 0.75, "tie": 0.05}, False),
])
def test_what_counts_as_close(verdict, probs, close):
    j = Judgment(id="x", prompt_id="p", model_a="m", model_b="b", judge="j", verdict=verdict, probs=probs,
                 error=None if verdict else "unreadable", error_kind=None if verdict else "parse")
    assert is_close(j, 0.5) is close


# A judge whose confidence is set per prompt: "sure" prompts get a clear verdict for the longer answer,
# "close" ones a barely-preferred one, "tie" ones a tie.
def scripted(body):
    text = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    if body["model"] in ("mine", "base"):
        return f"{body['model']} answers: {text}" + (" in more words" if body["model"] == "mine" else "")
    kind = re.search(r"\b(sure|close|tie)\d+\b", text).group(1)
    a, b = re.search(r"\[Answer A\]\n(.*)\n\n\[Answer B\]\n(.*)\n\nReply with", text, re.DOTALL).groups()
    longer = "A" if len(a) > len(b) else "B"
    token = "neither" if kind == "tie" else longer
    p = {"sure": 0.95, "close": 0.55, "tie": 0.2}[kind]
    other = "B" if longer == "A" else "A"
    probs = {token: p, other if kind != "tie" else "A": (1 - p) * 0.8,
             "neither" if kind != "tie" else "B": (1 - p) * 0.2}
    content = [{"token": "Verdict", "logprob": 0.0, "top_logprobs": [{"token": "Verdict", "logprob": 0.0}]},
               {"token": ":", "logprob": 0.0, "top_logprobs": [{"token": ":", "logprob": 0.0}]},
               {"token": f" {token}", "logprob": math.log(p),
                "top_logprobs": [{"token": f" {t}", "logprob": math.log(q)} for t, q in probs.items()]}]
    return f"Verdict: {token}", content


def prompts_of(tmp_path, names):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"id": n, "prompt": f"Question {n}?"}) + "\n" for n in names))
    return {"name": "file", "path": str(path)}


def test_both_if_close_asks_the_second_order_only_where_the_first_was_close(tmp_path):
    names = [f"sure{i}" for i in range(6)] + [f"close{i}" for i in range(3)] + [f"tie{i}" for i in range(3)]
    with OpenAITestServer(responder=scripted) as server:
        path = server_run_config(tmp_path, server.base_url, prompts_of(tmp_path, names),
                                 judge={"order": "both-if-close", "logprobs": True, "close_below": 0.5})
        cfg = load_config(path)
        result = run(cfg, show_progress=False)
        assert result.judgments.calls == 12 + 6  # every first order, and the second for the 6 close or tied
        again = run(cfg, show_progress=False)
    assert again.calls == 0
    judged = list(RunStore(cfg.run_dir).judgments().values())
    per_prompt: dict[str, list[Judgment]] = {}
    for j in judged:
        per_prompt.setdefault(j.prompt_id, []).append(j)
    assert all(len(v) == 1 for k, v in per_prompt.items() if k.startswith("sure"))
    assert all(len(v) == 2 for k, v in per_prompt.items() if not k.startswith("sure"))
    summary = json.loads((cfg.run_dir / "report" / "summary.json").read_text())
    row = next(r for r in summary["rows"] if r["model"] == "mine" and r.get("subset", "all") == "all")
    # sure: mine wins; close: mine wins in both orders (the judge follows length); tie: tie.
    assert (row["win"], row["tie"], row["loss"]) == (9, 3, 0)
    assert summary["judges"][0]["order"] == "both-if-close"


def test_both_if_close_on_a_rating_judge_rates_each_answer_once(tmp_path):
    with OpenAITestServer(responder=lambda body: "Rating: 4" if body["model"] == "gpt-4o" else "an answer") as server:
        path = server_run_config(tmp_path, server.base_url, prompts_of(tmp_path, ["q1", "q2"]),
                                 judge={"name": "lima-likert", "order": "both-if-close"})
        result = run(load_config(path), show_progress=False)
    assert result.judgments.calls == 4 and result.judgments.new == 4  # 2 prompts x 2 models, no orders


def coin(body):
    """A judge without a preference: a stable coin flip per request (a for mine in half the prompts)."""
    text = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    if body["model"] in ("mine", "base"):
        return f"{body['model']} answers: {text}" + (" in more words" if body["model"] == "mine" else "")
    pid = re.search(r"Question (q\d+)", text).group(1)
    return "Verdict: A" if int(pid[1:]) * 7919 % 2 == 0 else "Verdict: B"


@pytest.mark.parametrize("responder, decision", [(scripted, "above"), (coin, None)])
def test_stop_when_decided_stops_a_clear_pair_early_and_judges_an_even_one_to_the_end(tmp_path, responder, decision):
    names = [f"sure{i}" for i in range(120)] if responder is scripted else [f"q{i}" for i in range(80)]
    with OpenAITestServer(responder=responder) as server:
        path = server_run_config(tmp_path, server.base_url, prompts_of(tmp_path, names),
                                 judge={"order": "both", "stop_when_decided": {"step": 8, "min_prompts": 16}})
        cfg = load_config(path)
        result = run(cfg, show_progress=False)
        again = run(cfg, show_progress=False)
    assert again.calls == 0
    assert "(at most)" in run_cli("run", str(path), "--dry-run").stdout
    row = json.loads((cfg.run_dir / "report" / "summary.json").read_text())["adaptive"][0]
    assert row["decision"] == decision and row["prompts"] == len(names)
    judged = {j.prompt_id for j in RunStore(cfg.run_dir).judgments().values()}
    assert result.judgments.calls == 2 * len(judged) == 2 * row["prompts_judged"]
    order = prompt_order(cfg.seed, names)
    if decision:
        # All wins: the interval's low end passes 0.5 at the first look with 16 prompts or more.
        n = next(k for k in range(16, 121, 8) if interval([1.0] * k, 0.95, 120)[1] > 0.5)
        assert row["prompts_judged"] == n and judged == set(order[:n])
        report = (cfg.run_dir / "report" / "report.md").read_text()
        assert "adaptively (stop_when_decided)" in report and "left unjudged by stop_when_decided" not in report
    else:
        assert judged == set(names)


@pytest.mark.parametrize("judge, message", [
    ({"order": "sometimes"}, "config key 'judge.order': 'sometimes' is not one of both, random, both-if-close"),
    ({"close_below": 2}, "config key 'judge.close_below': 2.0 is out of range (must be >= 0 and <= 1)"),
    ({"stop_when_decided": {"confidence": 1}}, "config key 'judge.stop_when_decided.confidence': 1.0 is out of range"),
    ({"stop_when_decided": {"step": 0}}, "config key 'judge.stop_when_decided.step': 0 is out of range (must be >= 1)"),
    ({"stop_when_decided": {"threshold": 0}}, "config key 'judge.stop_when_decided.threshold': 0.0 is out of range"),
    ({"stop_when_decided": {"min_prompts": -3}}, "config key 'judge.stop_when_decided.min_prompts'"),
    ({"stop_when_decided": {"stop": 1}}, "unknown config key 'judge.stop_when_decided.stop'"),
    ({"stop_when_decided": "yes"}, "judge.stop_when_decided: expected a mapping, got str"),
    ({"name": "lima-absolute", "stop_when_decided": True},
     "config key 'judge.stop_when_decided': judge 'lima-absolute' rates answers"),
])
def test_bad_adaptive_configs_are_named_before_anything_is_written(tmp_path, judge, message):
    path = server_run_config(tmp_path, "http://127.0.0.1:9/v1", prompts_of(tmp_path, ["q1"]), judge=judge)
    out = run_cli("run", str(path), "--no-progress")
    assert_one_line_error(out, message)
    assert not (tmp_path / "results").exists()


def test_a_jury_refuses_adaptive_judging(tmp_path):
    ep = {"backend": "openai", "base_url": "http://127.0.0.1:9/v1"}
    path = write_config(tmp_path / "jury.yaml", {
        "name": "run", "output_dir": str(tmp_path / "results"), "benchmark": prompts_of(tmp_path, ["q1"]),
        "models": [{"name": n, "model": n, **ep} for n in ("mine", "base")], "baselines": ["base"],
        "judge": {"jury": [{"model": "j1", **ep}, {"model": "j2", **ep}], "stop_when_decided": True}})
    out = run_cli("run", str(path), "--no-progress")
    assert_one_line_error(out, "adaptive judging is not built for juries yet")
    assert not (tmp_path / "results").exists()
