"""Juries: three judges on a real local OpenAI-compatible server, each scripted per prompt, against a table of
outcomes worked out by hand (majority, mean-probability, abstention), the human queue round trip, the card of a
jury, and the bad jury configs."""

from __future__ import annotations

import csv
import json
import math
import re

import pytest
import yaml
from conftest import run_cli, write_config

from lima_eval.config import load_config
from lima_eval.judging.jury import decide
from lima_eval.pipeline import run
from lima_eval.store import RunStore
from lima_eval.testing.openai_server import OpenAITestServer

ANSWERS = {"mine": "MINE-ANSWER here", "base": "BASE-ANSWER"}
# Each juror's verdict per prompt in model terms (a: mine better, b: base better, tie; None: an unreadable reply),
# with its probabilities where it gives logprobs (a, b, tie).
VOTES = {
    "p1": [("a", None), ("a", None), ("a", None)],
    "p2": [("a", None), ("a", None), ("b", None)],
    "p3": [("a", None), ("b", None), ("tie", None)],
    "p4": [("b", None), ("b", None), ("tie", None)],
    "p5": [("a", None), (None, None), ("b", None)],
    "p6": [("tie", None), ("tie", None), ("a", None)],
    # Two jurors say b, barely; one says a, surely: the majority says b, the mean probability says a.
    "p7": [("a", (0.96, 0.02, 0.02)), ("b", (0.45, 0.55, 0.0)), ("b", (0.45, 0.55, 0.0))],
}
# Worked out by hand from VOTES. majority: more than half of the readable votes, else a tie; abstain: no verdict
# where there is no such majority; mean-probability: the highest mean probability (a juror without logprobs puts
# all of it on its verdict); p7's means are a 0.62, b 0.373, tie 0.0067.
EXPECTED = {
    "majority": {"p1": "a", "p2": "a", "p3": "tie", "p4": "b", "p5": "tie", "p6": "tie", "p7": "b"},
    "abstain": {"p1": "a", "p2": "a", "p3": None, "p4": "b", "p5": None, "p6": "tie", "p7": "b"},
    "mean-probability": {"p1": "a", "p2": "a", "p3": "tie", "p4": "b", "p5": "tie", "p6": "tie", "p7": "a"},
}
JURORS = ("j1", "j2", "j3")


def responder(body):
    text = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    if body["model"] in ANSWERS:
        return ANSWERS[body["model"]]
    pid = re.search(r"Question (p\d+)", text).group(1)
    verdict, probs = VOTES[pid][JURORS.index(body["model"])]
    if verdict is None:
        return "I would rather not say."
    mine_first = text.index("MINE-ANSWER") < text.index("BASE-ANSWER")
    token = {"tie": "neither", "a": "A" if mine_first else "B", "b": "B" if mine_first else "A"}[verdict]
    if probs is None or not body.get("logprobs"):
        return f"Verdict: {token}"
    pa, pb, pt = probs
    first, second = (pa, pb) if mine_first else (pb, pa)
    tops = [{"token": f" {t}", "logprob": math.log(p)} for t, p in (("A", first), ("B", second), ("neither", pt))
            if p > 0]
    content = [{"token": "Verdict", "logprob": 0.0, "top_logprobs": [{"token": "Verdict", "logprob": 0.0}]},
               {"token": ":", "logprob": 0.0, "top_logprobs": [{"token": ":", "logprob": 0.0}]},
               {"token": f" {token}", "logprob": math.log({"A": first, "B": second, "neither": pt}[token]),
                "top_logprobs": tops}]
    return f"Verdict: {token}", content


def jury_config(tmp_path, server, name="run", **jury):
    ep = {"backend": "openai", "base_url": server.base_url, "max_retries": 0}
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": p, "prompt": f"Question {p}?"}) + "\n" for p in VOTES))
    data = {"name": name, "output_dir": str(tmp_path / "results"), "benchmark": {"name": "file", "path": str(prompts)},
            "models": [{"name": n, "model": n, **ep} for n in ("mine", "base")], "baselines": ["base"],
            "judge": {"jury": [{"name": "lima-pairwise", "model": j, "cache_path": str(tmp_path / "cache.sqlite"), **ep}
                               for j in JURORS]} | jury}
    return write_config(tmp_path / f"{name}.yaml", data)


def pair_verdicts(cfg):
    """The report's verdict per prompt for the jury (its two orders combined)."""
    summary = json.loads((cfg.run_dir / "report" / "summary.json").read_text())
    store = RunStore(cfg.run_dir)
    from lima_eval.report.metrics import combine_orders

    jury = [j for j in store.judgments().values() if j.judge.startswith("jury:")]
    return {j.prompt_id: j.verdict for j in combine_orders(jury, "tie")}, summary


@pytest.mark.parametrize("case,extra", [
    ("majority", {}),
    ("abstain", {"abstain": True}),
    ("mean-probability", {"combine": "mean-probability"}),
])
def test_the_jury_gives_the_hand_worked_verdicts(tmp_path, case, extra):
    logprobs = case == "mean-probability"
    with OpenAITestServer(responder=responder) as server:
        path = jury_config(tmp_path, server, **extra)
        if logprobs:
            data = yaml.safe_load(path.read_text())
            for j in data["judge"]["jury"]:
                j |= {"logprobs": True, "top_logprobs": 5}
            path.write_text(yaml.safe_dump(data))
        cfg = load_config(path)
        result = run(cfg, show_progress=False)
        calls = server.requests
        again = run(cfg, show_progress=False)
        assert server.requests == calls  # a rerun asks nobody and derives nothing again
    assert again.judgments.new == 0
    verdicts, summary = pair_verdicts(cfg)
    assert verdicts == EXPECTED[case]
    # 7 prompts x 2 orders x 3 jurors asked; the jury's 14 verdicts derived from them.
    assert result.judgments.calls == 42
    label = "jury:j1+j2+j3"
    row = next(r for r in summary["rows"] if r["judge"] == label)
    want = EXPECTED[case]
    assert (row["win"], row["tie"], row["loss"]) == (
        sum(v == "a" for v in want.values()), sum(v == "tie" for v in want.values()),
        sum(v == "b" for v in want.values()))
    # Every jury record keeps each juror's vote; p5's second juror could not be read.
    p5 = [j for j in RunStore(cfg.run_dir).judgments().values() if j.judge == label and j.prompt_id == "p5"]
    assert all(j.votes == {"lima-pairwise:j1": "a", "lima-pairwise:j2": None, "lima-pairwise:j3": "b"} for j in p5)
    card = next(c for c in summary["judges"] if c["judge"] == label)
    assert card["abstained"] == (4 if case == "abstain" else 0) and card["errors"] == 0  # p3, p5 in both orders
    queue = cfg.run_dir / "human-queue" / "jury_j1+j2+j3.csv"
    if case != "abstain":
        assert not queue.exists()
        return
    with queue.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["prompt_id"], r["model_a"], r["model_b"], r["label"], r["annotator"]) for r in rows] == [
        ("p3", "mine", "base", "", ""), ("p5", "mine", "base", "", "")]
    # An untouched queue is not something to import.
    bad = run_cli("import-human", str(cfg.run_dir), str(queue))
    assert bad.returncode != 0 and "no row has a label yet" in bad.stderr and "line 2" in bad.stderr
    # People settle one item; the other waits. The queue's rows stay as people left them on a rerun.
    text = queue.read_text().replace("p3,mine,base,,,", "p3,mine,base,b,ann1,")
    queue.write_text(text)
    done = run_cli("import-human", str(cfg.run_dir), str(queue))
    assert done.returncode == 0, done.stderr
    assert "imported 1 label(s)" in done.stderr and "1 row(s) not labelled yet" in done.stderr
    summary = json.loads((cfg.run_dir / "report" / "summary.json").read_text())
    human = next(r for r in summary["rows"] if r["judge"] == "human")
    assert (human["win"], human["loss"]) == (0, 1)
    with OpenAITestServer(responder=responder) as server:
        run(load_config(jury_config(tmp_path, server, **extra)), show_progress=False)
    assert queue.read_text() == text


def test_decide_on_a_table():
    """The combination rule alone, on votes whose outcome is clear by hand."""
    assert decide([("a", None), ("a", None), ("a", None)]).outcome == "unanimous"
    d = decide([("a", None), ("b", None), ("a", None)])
    assert (d.verdict, d.outcome, round(d.support, 3)) == ("a", "majority", 0.667)
    assert decide([("a", None), ("b", None)]).verdict == "tie"
    assert decide([("a", None), ("b", None)], abstain=True).outcome == "abstained"
    # Unanimity on demand: abstain below two thirds abstains on a 2-1 split.
    assert decide([("a", None), ("b", None), ("a", None)], abstain=True, abstain_below=0.7).verdict is None
    assert decide([(None, None), (None, None)]).outcome == "unreadable"
    d = decide([("a", {"a": 0.6, "b": 0.4, "tie": 0.0}), ("b", None)], rule="mean-probability")
    assert (d.verdict, d.probs) == ("b", {"a": 0.3, "b": 0.7, "tie": 0.0})
    d = decide([("a", {"a": 0.5, "b": 0.5, "tie": 0.0}), ("b", {"a": 0.5, "b": 0.5, "tie": 0.0})],
               rule="mean-probability")
    assert d.verdict == "tie" and d.outcome == "split"


def test_a_jury_card_is_the_card_of_its_combined_verdicts(tmp_path):
    """Two jurors give the scripted verdict of the card test, a third always says A: the majority is the scripted
    verdict, so the jury's card has the hand-counted agreement of test_judge_card."""
    import test_judge_card as tj

    rows = [{"idx": str(i), "cmp_key": f"model-{i % 3}_other-{i % 2}", "instruction": f"Task {i}.", "input": "",
             "response1": f"<<a{i}>> " + "long " * (i % 5), "response2": f"<<b{i}>> " + "text " * (3 - i % 4),
             "annotator1": a, "annotator2": b, "annotator3": c} for i, (a, b, c) in enumerate(tj.LABELS)]
    gold = tmp_path / "gold.json"
    gold.write_text(json.dumps(rows))

    def jurors(body):
        return "Verdict: A" if body["model"] == "always-a" else tj.scripted(body)

    with OpenAITestServer(responder=jurors) as server:
        ep = {"backend": "openai", "base_url": server.base_url, "max_retries": 0,
              "cache_path": str(tmp_path / "c.sqlite")}
        section = tmp_path / "jury.yaml"
        section.write_text(json.dumps({"jury": [ep | {"model": "one"}, ep | {"model": "two"},
                                                ep | {"model": "always-a"}]}))
        out = run_cli("judge-card", str(section), "--gold", str(gold), "--results", str(tmp_path / "results"),
                      "--no-progress")
    assert out.returncode == 0, out.stderr
    card = json.loads(next((tmp_path / "results" / "judge-cards").glob("*/judge_card.json")).read_text())
    assert card["judge"] == "jury:one+two+always-a" and card["combine"] == "majority" and len(card["jury"]) == 3
    x = [tj.desired(i) for i in range(len(tj.LABELS))]
    y = [tj.majority(v) for v in tj.LABELS]
    want = tj.hand_agreement(x, y)
    assert card["vs_human_majority"]["kappa"] == pytest.approx(want["kappa"], abs=1e-4)
    assert card["vs_human_majority"]["tie_discounted"] == pytest.approx(want["tie_discounted"], abs=1e-4)
    assert card["records"] == 2 * len(tj.LABELS)  # the jury's verdicts (its jurors' are theirs)
    assert (card["backend"], card["model"]) == ("jury", "one+two+always-a")
    board = run_cli("leaderboard", str(tmp_path / "results"), "--judges")
    assert board.returncode == 0, board.stderr
    assert "jury:one+two+always-a" in (tmp_path / "results" / "leaderboard" / "judges.md").read_text()


BAD_JURIES = [
    ({"jury": [{"model": "x", "backend": "scripted"}]}, "judge.jury': a jury needs at least two jurors"),
    ({"jury": "j1"}, "judge.jury': expected a list"),
    ({"jury": [{"model": "fixed:A", "backend": "scripted"}] * 2, "combine": "tie"},
     "judge.combine': 'tie' is not one of majority, mean-probability"),
    ({"jury": [{"model": "fixed:A", "backend": "scripted"}] * 2, "model": "gpt-4o"},
     "judge.model': a jury has no endpoint of its own"),
    ({"jury": [{"model": "fixed:A", "backend": "scripted"}] * 2, "abstain_below": 1.0},
     "judge.abstain_below': 1.0 is out of range"),
    ({"jury": [{"model": "fixed:A", "backend": "scripted"}] * 2, "abstain_below": -0.1},
     "judge.abstain_below': -0.1 is out of range"),
    ({"jury": [{"model": "fixed:A", "backend": "scripted", "jury": [{"model": "y"}] * 2},
               {"model": "fixed:A", "backend": "scripted"}]}, "judge.jury.0.jury': a juror cannot be a jury"),
    ({"jury": [{"model": "fixed:A", "backend": "scripted"}, {"model": "fixed:A", "backend": "scripted",
                                                             "timout": 3}]},
     "unknown config key 'judge.jury.1.timout'"),
    ({"jury": [{"model": "fixed:A", "backend": "scripted"}, {"model": "fixed:A", "backend": "scripted",
                                                             "name": "lima-absolute"}]},
     "judge.jury.1.name': judge 'lima-absolute' rates single answers"),
    ({"jury": [{"model": "fixed:A", "backend": "scripted"}, {"model": "fixed:A", "backend": "scripted",
                                                             "name": "mt-bench-pair"}]},
     "judge.jury.1.name': judge 'mt-bench-pair' is of kind 'pairwise-multiturn'"),
]


@pytest.mark.parametrize("judge,message", BAD_JURIES)
def test_bad_juries_are_named_before_anything_is_written(tmp_path, judge, message):
    data = {"name": "run", "output_dir": str(tmp_path / "results"), "benchmark": "demo",
            "models": [{"name": n, "backend": "scripted", "model": "echo"} for n in ("mine", "base")],
            "baselines": ["base"], "judge": judge}
    out = run_cli("run", str(write_config(tmp_path / "c.yaml", data)), "--no-progress")
    assert out.returncode != 0 and message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()


def test_the_queue_of_a_model_named_like_a_formula_round_trips(tmp_path):
    """Two scripted jurors that always disagree: every pair is queued. A model name that a spreadsheet would run
    as a formula is written quoted, and the filled-in queue imports under the model's real name."""
    scripted = {"backend": "scripted"}
    data = {"name": "run", "output_dir": str(tmp_path / "results"), "benchmark": {"name": "demo", "limit": 3},
            "models": [{"name": n, "model": "echo", **scripted} for n in ("=HYPERLINK(1)", "base")],
            "baselines": ["base"],
            "judge": {"jury": [{"model": "fixed:Verdict: A", **scripted}, {"model": "fixed:Verdict: B", **scripted},
                               {"model": "fixed:Verdict: neither", **scripted}],
                      "abstain": True, "cache": False}}
    out = run_cli("run", str(write_config(tmp_path / "c.yaml", data)), "--no-progress")
    assert out.returncode == 0, out.stderr
    run_dir = tmp_path / "results" / "run"
    (queue,) = (run_dir / "human-queue").glob("*.csv")
    rows = list(csv.DictReader(queue.open(newline="")))
    assert len(rows) == 3 and all(r["model_a"] == "'=HYPERLINK(1)" and r["label"] == "" for r in rows)
    queue.write_text(queue.read_text().replace(",base,,,", ",base,a,ann1,"))
    done = run_cli("import-human", str(run_dir), str(queue))
    assert done.returncode == 0, done.stderr
    labels = RunStore(run_dir).judgments(human=True).values()
    assert sorted((j.model_a, j.verdict) for j in labels) == [("=HYPERLINK(1)", "a")] * 3
