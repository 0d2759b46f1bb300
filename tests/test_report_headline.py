"""Headlines no surer than the judge (issue 27): a win rate averaged from soft scores has the discrete one beside
it; a judge that fails its own consistency checks gets "no finding" in words, not a tight interval; equal or
better, prefers longer and the figure say what they count; an undertrained demo SFT model's answers are marked."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from conftest import server_run_config, write_config

from lima_eval.config import load_config
from lima_eval.pipeline import run
from lima_eval.report.html import begins_mid_word
from lima_eval.testing.openai_server import OpenAITestServer

ANSWERS = {"mine": "A long and careful answer to {q}, in several more words than the other one.",
           "base": "Short: {q}"}


def user_text(body: dict) -> str:
    return [m for m in body["messages"] if m["role"] == "user"][-1]["content"]


def verdict_with_probs(option: str, probs: dict[str, float]) -> tuple[str, list[dict]]:
    """A reply 'Verdict: OPTION' whose verdict token carries these option probabilities (OpenAI's logprobs)."""
    content = [{"token": "Verdict", "logprob": 0.0, "top_logprobs": [{"token": "Verdict", "logprob": 0.0}]},
               {"token": ":", "logprob": 0.0, "top_logprobs": [{"token": ":", "logprob": 0.0}]},
               {"token": f" {option}", "logprob": math.log(probs[option]),
                "top_logprobs": [{"token": f" {k}", "logprob": math.log(v)} for k, v in probs.items()]}]
    return f"Verdict: {option}", content


def first_shown(body: dict):
    """A logprob judge that cannot tell answers apart: it always prefers the answer shown first (the quickstart's
    tiny judge, in its purest form)."""
    text = user_text(body)
    if "[Answer A]" not in text:
        return ANSWERS[body["model"]].format(q=text)
    a, b = re.search(r"\[Answer A\]\n(.*)\n\n\[Answer B\]\n(.*)\n\nReply with", text, re.DOTALL).groups()
    # A shade surer with the longer answer first, by prompt: soft scores off one half, and varied.
    sure = 0.6 + 0.02 * (int(re.search(r"Question (\d+)", text).group(1)) % 3) if len(a) > len(b) else 0.57
    return verdict_with_probs("A", {"A": sure, "B": 0.98 - sure, "neither": 0.02})


def longer(body: dict):
    """A logprob judge that prefers the longer answer in either order, fairly sure of it (P 0.75 to 0.85)."""
    text = user_text(body)
    if "[Answer A]" not in text:
        return ANSWERS[body["model"]].format(q=text)
    a, b = re.search(r"\[Answer A\]\n(.*)\n\n\[Answer B\]\n(.*)\n\nReply with", text, re.DOTALL).groups()
    side = "A" if len(a) > len(b) else "B"
    sure = 0.75 + 0.05 * (int(re.search(r"Question (\d+)", text).group(1)) % 3)  # 0.75, 0.8 or 0.85
    return verdict_with_probs(side, {side: sure, "B" if side == "A" else "A": 0.95 - sure, "neither": 0.05})


def soft_run(tmp_path: Path, responder, n: int = 24) -> tuple[dict, str, str]:
    """A run of n prompts judged in both orders (the default) by a logprob judge: summary.json, report.md and
    report.html."""
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Question {i}?"}) + "\n" for i in range(n)))
    with OpenAITestServer(responder=responder) as server:
        cfg = load_config(server_run_config(tmp_path, server.base_url, {"name": "file", "path": str(prompts)},
                                            judge={"order": "both", "logprobs": True}))
        run(cfg, show_progress=False)
    report = cfg.run_dir / "report"
    return (json.loads((report / "summary.json").read_text()), (report / "report.md").read_text(),
            (report / "report.html").read_text())


def test_an_inconsistent_soft_judge_gets_no_finding_in_words(tmp_path):
    summary, md, html = soft_run(tmp_path, first_shown)
    row = summary["rows"][0]
    # Every pair's two orders disagree, so every combined verdict is a tie; the soft mean sits at one half.
    assert (row["win"], row["tie"], row["loss"], row["n"]) == (0, 24, 0, 24) and row["soft_scores"] == 24
    assert abs(row["win_rate"] - 0.5) < 0.05 and row["win_rate_ci_high"] - row["win_rate_ci_low"] < 0.05
    card = summary["judges"][0]
    assert card["position_consistency"] == 0.0
    assert card["cannot_tell_apart"].startswith("its two orders agreed on 0 of 24 pairs (0%, 95% interval 0% - ")
    # The headline says so in words, with no interval that reads as a finding.
    headline = summary["conclusions"][0]
    assert "no finding. The judge could not tell the answers apart: its two orders agreed on 0 of 24" in headline
    assert f"win rate {100 * row['win_rate']:.1f}% (discrete 50.0%) is no evidence either way" in headline
    assert "interval" not in headline.split("apart:")[0] and "no clear difference" not in headline
    # The tables: the discrete rate beside the soft one, and the row marked as no finding.
    low, high = row["discrete_win_rate_ci_low"], row["discrete_win_rate_ci_high"]
    discrete = f"; discrete 50.0 [{100 * low:.1f}, {100 * high:.1f}]"
    for page in (md, html):
        assert discrete + "; no finding: the judge could not tell the answers apart" in page
        # Equal or better is all ties, and says so; prefers longer has no win or loss to count.
        assert "100.0 [" in page and "] (0 wins + 24 ties of 24)" in page
        assert "n/a (no decisive verdict between answers of known, different lengths)" in page
    assert row["prefers_longer"] is None and row["prefers_longer_decisive"] == 0
    assert "no finding. The judge could not tell the answers apart" in html
    # Its position note no longer says that both orders cancel the bias out.
    position = next(n for n in summary["notes"] if "favours the answer shown first" in n)
    assert "cannot cancel a bias this strong" in position and "cancels out" not in position
    assert "could not tell the answers apart" in md.split("## Notes")[0].split("## What the numbers say")[1]


def test_a_consistent_soft_judge_keeps_the_plain_headline_with_the_discrete_rate_beside(tmp_path):
    summary, md, html = soft_run(tmp_path, longer)
    row = summary["rows"][0]
    assert (row["win"], row["tie"], row["loss"]) == (24, 0, 0) and row["soft_scores"] == 24
    assert summary["judges"][0]["cannot_tell_apart"] is None and summary["judges"][0]["position_consistency"] == 1.0
    headline = summary["conclusions"][0]
    assert headline.startswith(f"`mine` vs `base` ({row['judge']}): `mine` is preferred (win rate "
                               f"{100 * row['win_rate']:.1f}%, 95% interval {100 * row['win_rate_ci_low']:.1f} - ")
    assert 0.8 < row["win_rate"] < 0.85
    assert "; averaged from the judge's soft scores: its discrete win rate, a win 1, a tie 1/2, is 100.0%" in headline
    for page in (md, html):
        assert f"{100 * row['win_rate']:.1f} [" in page and "; discrete 100.0 [" in page and "no finding" not in page
        assert "(24 of 24 wins and losses)" in page  # prefers longer counts the wins and losses
    # The soft scores no longer make "decisive" verdicts: prefers longer rests on the 24 wins.
    assert (row["prefers_longer"], row["prefers_longer_decisive"], row["prefers_longer_hits"]) == (1.0, 24, 24)


def test_a_discrete_judge_prints_no_discrete_rate_beside_its_win_rate(tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Question {i}?"}) + "\n" for i in range(6)))
    cfg = load_config(write_config(tmp_path / "c.yaml", {
        "name": "d", "output_dir": str(tmp_path / "results"), "benchmark": {"name": "file", "path": str(prompts)},
        "models": [{"name": "a", "backend": "scripted", "model": "echo"},
                   {"name": "b", "backend": "scripted", "model": "fixed:ok"}],
        "baselines": ["b"], "judge": {"backend": "scripted", "model": "cycle:Verdict: A|Verdict: B"}}))
    run(cfg, show_progress=False)
    summary = json.loads((cfg.run_dir / "report" / "summary.json").read_text())
    assert summary["rows"][0]["soft_scores"] == 0
    md = (cfg.run_dir / "report" / "report.md").read_text()
    assert "; discrete" not in md and "discrete win rate" not in md.split("## Notes")[0].split("## What the")[1]


def test_alpaca_eval_weighted_judge_shows_the_discrete_rate_under_equal_or_better(shared_data, tmp_path):
    """AlpacaEval 2's weighted judge: the soft win rate 17.2 sits above equal or better 16.4 (which counts discrete
    wins and ties); the discrete win rate beside it, 16.3, sits below, as it must."""
    from lima_eval.judging.foreign import import_judgments
    from lima_eval.report.build import build_report

    run_dir = tmp_path / "claude-2"
    import_judgments(run_dir, shared_data / "alpaca_eval/results/claude-2/weighted_alpaca_eval_gpt4_turbo/"
                     "annotations.json", "alpaca-eval")
    report = build_report(run_dir)
    row = json.loads((report / "summary.json").read_text())["rows"][0]
    assert row["discrete_win_rate"] <= row["equal_or_better"] < row["win_rate"]
    md = (report / "report.md").read_text()
    assert "| 17.2 [15.0, 19.6]; discrete 16.3 [" in md and "| 16.4 [14.0, 19.1] (131 wins + 1 ties of 805) |" in md
    assert f"({row['prefers_longer_hits']} of {row['prefers_longer_decisive']} wins and losses)" in md


@pytest.mark.parametrize("text,mid", [
    ("at's house, which is", True), ("'s a good idea", True), (", and then the", True), ("ing the road", True),
    ("The capital is Paris.", False), ("1. Preheat the oven", False), ("\"Hello\"", False), ("- a list", False),
    ("  It depends.", False), ("", False),
])
def test_an_answer_that_begins_mid_word(text, mid):
    assert begins_mid_word(text) is mid


def test_a_demo_sft_model_says_why_its_answers_begin_mid_word(tmp_path, prompts_file, judge_server):
    """Two optimiser steps (a tiny model, the quickstart's recipe in miniature): the note says that so few steps do
    not teach the chat format, and report.html marks each of the tuned model's answers that begins mid-word."""
    sft = {"name": "tuned", "base": "embedded:tiny-random", "data": "demo", "max_examples": 8, "epochs": 1,
           "batch_size": 4, "micro_batch_size": 4, "max_seq_len": 64, "keep_epochs": []}
    cfg = load_config(write_config(tmp_path / "c.yaml", {
        "name": "sftrun", "output_dir": str(tmp_path / "results"),
        "benchmark": {"name": "file", "path": str(prompts_file)}, "sft": sft,
        "models": [{"name": "base", "model": "embedded:tiny-random", "sampling": {"max_new_tokens": 6}},
                   {"name": "tuned", "model": "filled-in", "sampling": {"max_new_tokens": 6}}],
        "baselines": ["base"], "judge": {"backend": "openai", "model": "j", "base_url": judge_server.base_url}}))
    run(cfg, show_progress=False)
    report = cfg.run_dir / "report"
    note = next(n for n in json.loads((report / "summary.json").read_text())["notes"] if "optimiser step" in n)
    assert note.startswith("The SFT stage ran 2 optimiser step(s)") and "do not teach the chat format" in note
    assert "`tuned` still continues the text it is given, so its answers may begin mid-word" in note
    page = (report / "report.html").read_text()
    answers = re.findall(r"<div><b>(\w+)</b>(.*?)</div>", page, re.DOTALL)
    assert {m for m, _ in answers} == {"base", "tuned"}
    marked = 0
    for model, shown in answers:
        for mark, text in re.findall(r'(<span class="mark">[^<]*</span>)?<pre>(.*?)</pre>', shown, re.DOTALL):
            expected = model == "tuned" and begins_mid_word(html_text(text))
            assert bool(mark) is expected, (model, text)
            marked += bool(mark)
    assert marked >= 1 and "begins mid-word: too few SFT steps to learn the chat format (see Notes)" in page


def html_text(fragment: str) -> str:
    import html

    return html.unescape(fragment)
