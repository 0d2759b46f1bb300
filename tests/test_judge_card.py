"""Judge cards: a judge measured against human gold labels, every figure checked against a hand count."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import run_cli

from lima_eval.config import JudgeSpec, build_section
from lima_eval.judge_card import fleiss_kappa, make_card
from lima_eval.testing.openai_server import OpenAITestServer

LABELS = [  # three annotators per item: 1 = response1 better, 2 = response2 better, 0 = tie
    ("1", "1", "1"), ("2", "2", "1"), ("0", "0", "2"), ("1", "2", "0"), ("2", "2", "2"), ("1", "1", "0"),
    ("0", "0", "0"), ("2", "1", "2"), ("1", "1", "2"), ("2", "2", "0"), ("0", "1", "0"), ("1", "1", "1"),
    ("2", "2", "2"), ("1", "0", "1"), ("2", "0", "2"), ("0", "0", "1"), ("1", "1", "1"), ("2", "1", "1"),
    ("1", "2", "2"), ("0", "2", "0"),
]
SWAP = {"A": "B", "B": "A"}
AGREE = 14  # the scripted judge gives the human majority on the first 14 items, another verdict on the rest


def majority(votes):
    vals = [{"1": 1, "2": -1, "0": 0}[v] for v in votes]
    counts = sorted(((vals.count(c), c) for c in set(vals)), reverse=True)
    return 0 if len(counts) > 1 and counts[0][0] == counts[1][0] else counts[0][1]


def desired(i):
    m = majority(LABELS[i])
    return m if i < AGREE else {1: -1, -1: 0, 0: 1}[m]


@pytest.fixture
def gold(tmp_path):
    rows = [{"idx": str(i), "cmp_key": f"model-{i % 3}_other-{i % 2}", "instruction": f"Task {i}.", "input": "",
             "response1": f"<<a{i}>> " + "long " * (i % 5), "response2": f"<<b{i}>> " + "text " * (3 - i % 4),
             "annotator1": a, "annotator2": b, "annotator3": c} for i, (a, b, c) in enumerate(LABELS)]
    path = tmp_path / "gold.json"
    path.write_text(json.dumps(rows))
    return path, rows


def scripted(body):
    """The judge of the table: find the item and which answer is shown first, say the desired verdict."""
    text = body["messages"][-1]["content"]
    i = int(re.search(r"<<a(\d+)>>", text).group(1))
    v = desired(i)
    if v == 0:
        return "Verdict: neither"
    a_first = text.index(f"<<a{i}>>") < text.index(f"<<b{i}>>")
    return "Verdict: A" if (v == 1) == a_first else "Verdict: B"


def hand_agreement(x, y):
    n = len(x)
    same = sum(a == b for a, b in zip(x, y))
    one_tie = sum((a == 0) != (b == 0) for a, b in zip(x, y))
    both = [(a, b) for a, b in zip(x, y) if a != 0 and b != 0]
    pe = sum((x.count(c) / n) * (y.count(c) / n) for c in (-1, 0, 1))
    return {"tie_discounted": (same + 0.5 * one_tie) / n, "with_ties": same / n,
            "without_ties": sum(a == b for a, b in both) / len(both), "kappa": (same / n - pe) / (1 - pe)}


def spec(server, **kw):
    return build_section(JudgeSpec, {"name": "lima-pairwise", "backend": "openai", "model": "judge",
                                     "base_url": server.base_url, "max_retries": 0} | kw, "judge")


def test_the_card_of_a_scripted_judge_equals_the_hand_count(tmp_path, gold):
    path, rows = gold
    with OpenAITestServer(responder=scripted) as server:
        folder = make_card(spec(server, cache_path=str(tmp_path / "cache.sqlite")), str(path), tmp_path / "results",
                           repeats=2, show=False)
        calls = server.requests
        again = make_card(spec(server, cache_path=str(tmp_path / "cache.sqlite")), str(path), tmp_path / "results",
                          repeats=2, show=False)
        assert server.requests == calls == 2 * 2 * len(LABELS)  # both orders, two repeats; nothing asked twice
    assert again == folder
    card = json.loads((folder / "judge_card.json").read_text())
    x = [desired(i) for i in range(len(LABELS))]
    y = [majority(v) for v in LABELS]
    expected = hand_agreement(x, y)
    for key, value in expected.items():
        assert card["vs_human_majority"][key] == round(value, 4), key
        low, high = card["vs_human_majority"][key + "_ci"]
        assert low <= round(value, 4) <= high
    assert card["position"]["consistency"]["share"] == 1.0
    assert card["position"]["first_shown_wins"]["share"] == 0.5  # each decisive item: once first, once second
    lengths = [np.sign(len(r["response1"]) - len(r["response2"])) for r in rows]
    decisive = [(v, ln) for v, ln in zip(x, lengths) if v != 0 and ln != 0]
    assert card["length"]["judge_prefers_longer"]["share"] == round(
        sum(v == ln for v, ln in decisive) / len(decisive), 4)
    assert card["stability"]["flip_rate"]["share"] == 0.0 and card["stability"]["fleiss_kappa"] == 1.0
    assert card["records"] == 4 * len(LABELS) and card["parse_errors"] == 0 and card["new_calls"] == 0
    # The ceiling: annotator 1 against the majority of 2 and 3, and so on (hand-counted).
    loo = []
    for k in range(3):
        own = [{"1": 1, "2": -1, "0": 0}[v[k]] for v in LABELS]
        rest = [majority([v[j] for j in range(3) if j != k]) for v in LABELS]
        loo.append(hand_agreement(own, rest)["kappa"])
    assert card["human_ceiling"]["kappa"] == round(float(np.mean(loo)), 4)
    md = (folder / "judge_card.md").read_text()
    assert "human ceiling" in md and "Cohen's kappa" in md


def test_pandalm_annotators_kappa_and_the_gpt_judges_agreement_match_the_published_and_imported_figures(
        shared_data, tmp_path):
    """The ceiling reproduces the three annotators' published kappa (PandaLM README: 0.85 / 0.88 / 0.86); the
    file's own gpt-3.5 verdicts, replayed as a judge, agree with the human majority as the importer counts them."""
    from lima_eval.judging.foreign import import_judgments
    from lima_eval.report.stats import agreement
    from lima_eval.store import RunStore

    gpt = {str(r["idx"]): str(r["gpt_result"]).strip().lower()
           for r in json.loads((shared_data / "pandalm/gpt-3.5-turbo-testset-v1.json").read_text())}
    test_set = json.loads((shared_data / "pandalm/testset-v1.json").read_text())
    # Items a judge can tell apart (two different answers, and no other item shows it the same question and
    # answers), the first 120 of them.
    seen = {}
    def shows(r):  # what a judge is shown, in either order
        return r["instruction"], r.get("input"), frozenset((str(r["response1"]), str(r["response2"])))

    for r in test_set:
        seen.setdefault(shows(r), []).append(r)
    subset = [r for r in test_set if str(r["response1"]) != str(r["response2"])  # a judge cannot tell those apart
              and len(seen[shows(r)]) == 1][:120]
    gold_path = tmp_path / "subset.json"
    gold_path.write_text(json.dumps(subset))
    def shown(r, first, second):
        extra = r.get("input")
        prompt = r["instruction"] + (f"\n\n{extra}" if isinstance(extra, str) and extra.strip() else "")
        return f"{prompt}\n\n[Answer A]\n{first}\n\n[Answer B]\n{second}\n\n"

    def replay(body):
        text = body["messages"][-1]["content"]
        for r in subset:
            said = {"1": "A", "2": "B", "tie": "neither"}.get(gpt[str(r["idx"])])
            if shown(r, str(r["response1"]), str(r["response2"])) in text:
                return f"Verdict: {said}" if said else "garbage"
            if shown(r, str(r["response2"]), str(r["response1"])) in text:
                return "Verdict: " + SWAP.get(said, said) if said else "garbage"
        raise AssertionError("an item the replay does not know")

    limit = len(subset)
    with OpenAITestServer(responder=replay) as server:
        folder = make_card(spec(server, cache=False, concurrency=16), str(gold_path), tmp_path / "results", show=False)
    card = json.loads((folder / "judge_card.json").read_text())
    full = make_card(build_section(JudgeSpec, {"name": "lima-pairwise", "backend": "scripted",
                                               "model": "fixed:Verdict: neither"}, "judge"),
                     str(shared_data / "pandalm/testset-v1.json"), tmp_path / "results", show=False)
    pairs = json.loads((full / "judge_card.json").read_text())["human_ceiling"]["pairs"]
    assert [round(pairs[k]["kappa"], 2) for k in ("annotator1|annotator2", "annotator1|annotator3",
                                                   "annotator2|annotator3")] == [0.85, 0.88, 0.86]
    # The importer's view of the same verdicts: gpt-3.5 vs the human majority on the first `limit` items.
    run = tmp_path / "panda"
    import_judgments(run, shared_data / "pandalm/testset-v1.json", "pandalm")
    import_judgments(run, shared_data / "pandalm/gpt-3.5-turbo-testset-v1.json", "pandalm")
    records = list(RunStore(run).imported().values())
    keep = {str(r["idx"]) for r in subset}
    votes, judge = {}, {}
    for j in records:
        if j.prompt_id not in keep or j.verdict is None:
            continue
        v = {"a": 1, "b": -1, "tie": 0}[j.verdict]
        (votes.setdefault(j.prompt_id, []).append(v) if j.judge == "human" else judge.__setitem__(j.prompt_id, v))
    items = sorted(judge)
    from lima_eval.judge_card import _majority

    expected = agreement(np.array([judge[i] for i in items]), np.array([_majority(votes[i]) for i in items]))
    assert card["judged"] == len(items) and card["parse_errors"] == 2 * (limit - len(items))
    for key in ("tie_discounted", "with_ties", "kappa"):
        assert card["vs_human_majority"][key] == round(expected[key], 4)


def test_fleiss_kappa_of_the_textbook_table():
    """Fleiss (1971) as tabulated on Wikipedia: 10 items, 14 raters, 5 categories -> 0.210."""
    table = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                      [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]], dtype=float)
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=0.001)


@pytest.mark.parametrize("args,message", [
    (["--gold", "nonsense-set"], "neither a gold set"),
    (["--gold", "{bad}"], "field 'annotator2'"),
    (["--gold", "{gold}", "--repeats", "0"], "--repeats"),
    (["--gold", "{gold}", "--set", "timeout=-1", "--set", "backend=openai", "--set", "base_url=http://127.0.0.1:9/v1"],
     "out of range"),
])
def test_bad_judge_card_input_is_named(tmp_path, gold, args, message):
    path, rows = gold
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([rows[0] | {"annotator2": "7"}]))
    args = [a.replace("{bad}", str(bad)).replace("{gold}", str(path)) for a in args]
    proc = run_cli("judge-card", "lima-pairwise", *args, "--results", str(tmp_path / "results"), "--no-progress",
                   cwd=tmp_path)
    assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "results").exists()


def test_a_rating_judge_has_no_card(tmp_path, gold):
    path, _ = gold
    proc = run_cli("judge-card", "lima-absolute", "--gold", str(path), "--results", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 1 and "a card measures a pairwise judge" in proc.stderr


def test_a_runs_report_shows_its_judges_card_or_the_command_that_makes_one(tmp_path, gold):
    from conftest import write_config

    from lima_eval.cli import main

    path, _ = gold
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Q{i}?"}) + "\n" for i in range(4)))
    judge = {"backend": "scripted", "model": "cycle:Verdict: A|Verdict: B|Verdict: neither"}
    config = write_config(tmp_path / "c.yaml", {
        "name": "r", "output_dir": str(tmp_path / "results"), "benchmark": {"name": "file", "path": str(prompts)},
        "models": [{"name": "mine", "backend": "scripted", "model": "echo"},
                   {"name": "base", "backend": "scripted", "model": "fixed:ok"}],
        "baselines": ["base"], "judge": judge})
    for argv in (["run", str(config), "--no-progress"], ["report", str(tmp_path / "results/r")]):
        try:
            main(argv)
        except SystemExit as exc:
            assert not exc.code
        summary = json.loads((tmp_path / "results/r/report/summary.json").read_text())
        if argv[0] == "run":
            assert summary["judges"][0]["human_card"] is None
            (note,) = [n for n in summary["notes"] if "has no judge card" in n]
            assert "lima-eval judge-card lima-pairwise --gold pandalm --set backend=scripted" in note
            folder = make_card(build_section(JudgeSpec, {"name": "lima-pairwise"} | judge, "judge"), str(path),
                               tmp_path / "results", show=False)
    card = json.loads((folder / "judge_card.json").read_text())
    shown = summary["judges"][0]["human_card"]
    assert shown["kappa"] == card["vs_human_majority"]["kappa"] and shown["gold"] == "gold"
    assert shown["ceiling_kappa"] == card["human_ceiling"]["kappa"]
    assert any("against people (gold, 20 items)" in n for n in summary["notes"])
    assert "kappa vs humans [ceiling]" in (tmp_path / "results/r/report/report.md").read_text()


def test_gates_on_judge_quality_in_check_and_in_the_run_config(tmp_path, gold):
    """`check` rules min_judge_kappa / max_position_bias / max_flip_rate read the judge's card and the run; a run
    config's judge.require marks the report's verdicts untrusted when a bound fails."""
    from conftest import write_config

    from lima_eval.cli import main

    path, _ = gold
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Q{i}?"}) + "\n" for i in range(6)))
    judge = {"backend": "scripted", "model": "cycle:Verdict: A|Verdict: B|Verdict: neither"}
    make_card(build_section(JudgeSpec, {"name": "lima-pairwise"} | judge, "judge"), str(path), tmp_path / "results",
              repeats=3, show=False)
    config = write_config(tmp_path / "c.yaml", {
        "name": "r", "output_dir": str(tmp_path / "results"), "benchmark": {"name": "file", "path": str(prompts)},
        "models": [{"name": "mine", "backend": "scripted", "model": "echo"},
                   {"name": "base", "backend": "scripted", "model": "fixed:ok"}],
        "baselines": ["base"], "judge": judge | {"require": {"min_judge_kappa": 0.5}}})
    try:
        main(["run", str(config), "--no-progress"])
    except SystemExit as exc:
        assert not exc.code
    summary = json.loads((tmp_path / "results/r/report/summary.json").read_text())
    assert summary["judges"][0]["trusted"] is False
    assert summary["notes"][0].startswith("UNTRUSTED: the verdicts of `lima-pairwise:cycle:") and "min_judge_kappa" in \
        summary["notes"][0]
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {min_judge_kappa: 0.5}\n  - {max_flip_rate: 1.0}\n  - {max_position_bias: 0.5}\n")
    proc = run_cli("check", str(tmp_path / "results/r"), "--rules", str(rules), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any(x.startswith("FAILED") and "kappa with humans" in x for x in lines)
    assert any(x.startswith("ok") and "flip rate across repeats" in x for x in lines)
    assert any(x.startswith("ok") and "position bias" in x for x in lines)
    card = json.loads(next((tmp_path / "results/judge-cards").glob("*/judge_card.json")).read_text())
    assert f"{card['vs_human_majority']['kappa']:.4f}" in proc.stdout
    # No card for the judge named: an input the gate cannot use (exit 2), said in one line.
    other = tmp_path / "other.yaml"
    other.write_text("rules:\n  - {min_judge_kappa: 0.5, judge: nobody}\n")
    bad = run_cli("check", str(tmp_path / "results/r"), "--rules", str(other), cwd=tmp_path)
    assert bad.returncode == 2 and "no judge 'nobody'" in bad.stderr


def test_judges_leaderboard_puts_every_card_side_by_side(tmp_path, gold):
    path, _ = gold
    for model in ("fixed:Verdict: A", "cycle:Verdict: A|Verdict: B"):
        make_card(build_section(JudgeSpec, {"name": "lima-pairwise", "backend": "scripted", "model": model}, "judge"),
                  str(path), tmp_path / "results", show=False)
    proc = run_cli("leaderboard", str(tmp_path / "results"), "--judges", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    board = tmp_path / "results/leaderboard"
    import csv as _csv

    rows = list(_csv.DictReader((board / "judges.csv").open()))
    assert len(rows) == 2 and {r["judge"] for r in rows} == {"lima-pairwise:fixed:Verdict: A",
                                                              "lima-pairwise:cycle:Verdict: A|Verdict: B"}
    cards = [json.loads(p.read_text()) for p in (tmp_path / "results/judge-cards").glob("*/judge_card.json")]
    assert sorted(float(r["ceiling_kappa"]) for r in rows) == sorted(c["human_ceiling"]["kappa"] for c in cards)
    assert ((board / "judges.png").read_bytes()[:4] == b"\x89PNG"
            and "kappa vs humans" in (board / "judges.md").read_text())
    assert "<table>" in (board / "judges.html").read_text()


@pytest.mark.slow
def test_the_embedded_judge_gets_a_card_end_to_end(shared_data, tmp_path):
    """The quickstart's judge (a 135M model, logprob verdicts) on PandaLM items: it picks whichever answer it is
    shown first, and its card says so."""
    judge = build_section(JudgeSpec, {"name": "lima-pairwise", "backend": "hf",
                                      "model": "embedded:smollm2-135m-instruct", "batch_size": 16, "logprobs": True,
                                      "sampling": {"max_new_tokens": 3}}, "judge")
    folder = make_card(judge, str(shared_data / "pandalm/testset-v1.json"), tmp_path / "results", limit=8, show=False)
    card = json.loads((folder / "judge_card.json").read_text())
    assert card["judged"] == 8 and card["records"] == 16 and card["parse_errors"] == 0
    assert card["position"]["first_shown_wins"]["share"] >= 0.9 and card["position"]["consistency"]["share"] <= 0.1
    assert card["human_ceiling"]["annotators"] == 3 and card["vs_human_majority"]["n"] == 8


def mt_bench_votes(shared_data, qids=(81, 82, 83, 84, 85, 86)):
    """Rows in the schema of MT-bench's human judgments (lmsys/mt_bench_human_judgments), built from MT-bench's
    real questions and two real models' answers; the experts' votes are ours (the real ones live on the hub)."""
    questions = {q["question_id"]: q for q in map(json.loads, (shared_data / "mt_bench/question.jsonl").open())}
    answers = {m: {a["question_id"]: a["choices"][0]["turns"]
                   for a in map(json.loads, (shared_data / f"mt_bench/model_answer/{m}.jsonl").open())}
               for m in ("gpt-4", "vicuna-13b-v1.3")}
    votes = {81: ["model_a", "model_a"], 82: ["model_b", "tie"], 83: ["tie (bothbad)", "tie"],
             84: ["model_a", "model_b"], 85: ["model_b", "model_b"], 86: ["model_a", "model_a"]}
    rows = []
    for qid in qids:
        q = questions[qid]["turns"]
        # Half the rows list vicuna as model_a: the loader must put each item's models in one order.
        a, b = ("gpt-4", "vicuna-13b-v1.3") if qid % 2 else ("vicuna-13b-v1.3", "gpt-4")
        for k, winner in enumerate(votes[qid]):
            flip = {"model_a": "model_b", "model_b": "model_a"}.get(winner, winner) if a != "gpt-4" else winner
            conv = {m: [{"role": "user", "content": q[0]}, {"role": "assistant", "content": answers[m][qid][0]},
                        {"role": "user", "content": q[1]}, {"role": "assistant", "content": answers[m][qid][1]}]
                    for m in (a, b)}
            for turn in (1, 2):
                rows.append({"question_id": qid, "model_a": a, "model_b": b, "winner": flip, "judge": f"expert_{k}",
                             "conversation_a": conv[a], "conversation_b": conv[b], "turn": turn})
    return rows


def test_mt_bench_human_judgments_as_a_gold_file(shared_data, tmp_path):
    from lima_eval.judging.gold import load_gold

    path = tmp_path / "human_judgments.json"
    path.write_text(json.dumps(mt_bench_votes(shared_data)))
    name, items = load_gold(str(path))
    assert name == "human_judgments" and len(items) == 6  # first turns only, one item per question and pair
    by_q = {i.id.split(":")[0]: i for i in items}
    # Votes in gpt-4's terms: +1 gpt-4 better. A one-one split is a tie (82, 84); 83: both ties.
    assert {q: i.majority for q, i in by_q.items()} == {"81": 1, "82": 0, "83": 0, "84": 0, "85": -1, "86": 1}
    first = by_q["82"]
    assert (first.model_a, first.model_b) == ("gpt-4", "vicuna-13b-v1.3")
    question = json.loads((shared_data / "mt_bench/question.jsonl").open().readlines()[1])["turns"][0]
    assert first.prompt == question and first.answer_a != first.answer_b
    assert dict(first.labels) == {"expert_0": -1, "expert_1": 0}
    # A judge that always picks the first-shown answer gets the card it deserves on it.
    card_dir = make_card(build_section(JudgeSpec, {"backend": "scripted", "model": "fixed:Verdict: A", "cache": False},
                                       "judge"), str(path), tmp_path / "results", show=False)
    card = json.loads((card_dir / "judge_card.json").read_text())
    assert card["gold"] == "human_judgments" and card["items"] == 6
    assert card["position"]["first_shown_wins"]["share"] == 1.0 and card["position"]["consistency"]["share"] == 0.0


@pytest.mark.parametrize("change,message", [
    ({"winner": "model_c"}, "line 1, field 'winner': 'model_c' is not one of model_a, model_b, tie"),
    ({"turn": 3}, "line 1, field 'turn': 3 is not 1 or 2"),
    ({"judge": ""}, "line 1, field 'judge': missing or not text"),
    ({"question_id": None}, "line 1, field 'question_id': not an id"),
    ({"conversation_b": [{"role": "user", "content": "only a question"}]}, "line 1, field 'conversation_b'"),
    ({"conversation_a": "text"}, "line 1, field 'conversation_a'"),
])
def test_bad_mt_bench_judgment_rows_are_named(shared_data, tmp_path, change, message):
    from lima_eval.errors import InputError
    from lima_eval.judging.gold import load_gold

    rows = mt_bench_votes(shared_data, qids=(81,))
    rows[0] |= change
    path = tmp_path / "votes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError) as err:
        load_gold(str(path))
    assert message in str(err.value)
