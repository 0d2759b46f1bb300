"""The README's first command, for real: the embedded models, offline, end to end (minutes on 2 CPU cores)."""

import json

import pytest
from conftest import run_cli


def _degenerate(text: str) -> bool:
    words = text.split()
    return len(words) < 3 or len(set(words)) / len(words) < 0.5 or text.lower().startswith("assistant")


@pytest.mark.slow
def test_default_run_end_to_end_then_nothing_to_do(tmp_path):
    first = run_cli("run", cwd=tmp_path, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = tmp_path / "results" / "quickstart"
    report = run_dir / "report"
    assert first.stdout.strip() == f"report: {report.relative_to(tmp_path) / 'report.md'}"
    summary = json.loads((report / "summary.json").read_text())
    rows = {(r["model"], r["baseline"]): r for r in summary["rows"]}
    # The SFT'd Gemma against its base model and against the embedded instruct model.
    assert set(rows) == {("gemma3-270m-sft-demo", "gemma3-270m-base"),
                         ("gemma3-270m-sft-demo", "smollm2-135m-instruct")}
    for row in rows.values():
        assert row["n"] == summary["n_prompts"] == 30 and row["errors"] == 0  # logprob verdicts are always valid
        assert row["win"] + row["tie"] + row["loss"] == row["n"]
        # The tiny judge mostly picks whichever answer it sees first, so its two orders rarely agree: the
        # demo reports no finding in words instead of a tight interval around 50% (docs/report.md).
        assert row["win_rate_ci_low"] <= 0.5 <= row["win_rate_ci_high"]
    assert all("no finding. The judge could not tell the answers apart" in c for c in summary["conclusions"])
    text = (report / "report.md").read_text()
    assert "smoke-test judge" in text and "demonstrates the path" in text and "; discrete " in text
    # The demo SFT model (2 steps) has not learnt the chat format: the note says so, the answer browser marks it.
    assert "its answers may begin mid-word" in text
    assert '<span class="mark">begins mid-word' in (report / "report.html").read_text()
    # How far to trust it: the tiny judge's position bias is called out, and it has no judge card yet.
    assert any("favours the answer shown first" in n for n in summary["notes"]), summary["notes"]
    assert any("has no judge card" in n and "lima-eval judge-card lima-pairwise --gold pandalm" in n
               for n in summary["notes"])
    # The judge is the smollm2 baseline itself: it judges its own answers, and the report says so.
    (own,) = summary["self_preference"]
    assert (own["family"], own["own_model"], own["other_model"]) == (
        "smollm", "smollm2-135m-instruct", "gemma3-270m-sft-demo")
    assert any(n.startswith("Self-preference risk: `lima-pairwise:smollm2-135m-instruct`") for n in summary["notes"])
    assert (report / "win_tie_loss.png").read_bytes()[:4] == b"\x89PNG"
    sft = json.loads((run_dir / "sft/gemma3-270m-sft-demo/lima_sft.json").read_text())
    assert sft["steps"] == 2
    for stage in ("SFT: ", "generate: model gemma3-270m-sft-demo", "generate: model gemma3-270m-base",
                  "generate: model smollm2-135m-instruct", "judge: lima-pairwise", "report: writing"):
        assert stage in first.stderr  # a header per stage
    assert "{'loss'" not in first.stderr  # one SFT progress line, not the Trainer's dict logs

    # The base model gets its <bos>: sensible text, not "Assistant, Assistant, ...".
    gens = [json.loads(line) for line in (run_dir / "generations.jsonl").read_text().splitlines()]
    base = [g["text"] for g in gens if g["model"] == "gemma3-270m-base"]
    assert len(base) == 30 and sum(map(_degenerate, base)) <= 3, [t for t in base if _degenerate(t)]
    # Every stored judge reply that names an option names the recorded verdict.
    from lima_eval.judging.definitions import load_definition
    from lima_eval.judging.parsers import FIRST, NEITHER, get_parser

    parse = get_parser(load_definition("lima-pairwise").parser)
    for line in (run_dir / "judgments.jsonl").read_text().splitlines():
        j = json.loads(line)
        option, _ = parse(j["raw"])
        if option is not None:
            side = "tie" if option == NEITHER else j["shown_first"] if option == FIRST else \
                {"a": "b", "b": "a"}[j["shown_first"]]
            assert side == j["verdict"], j["raw"]
    # Only what later steps need is kept: no optimiser state (the model is bf16, like its base).
    size = sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file())
    assert size < 1e9 and not (run_dir / "sft/gemma3-270m-sft-demo/checkpoints").exists()

    written = (report / "report.md").stat().st_mtime_ns
    second = run_cli("run", cwd=tmp_path, timeout=300)
    assert second.returncode == 0
    assert "0 new model or judge calls" in second.stderr and "already trained" in second.stderr
    assert (report / "report.md").stat().st_mtime_ns == written  # nothing changed: the report is kept

    # The README's next step ("A real judge"), verbatim on this run: only the new judge is asked (the answers are
    # on disk), on a local OpenAI-compatible server (OPENAI_BASE_URL and OPENAI_API_KEY are the openai client's
    # own variables; the second command names the server itself).
    from conftest import longer_answer_judge
    from test_readme import _args, _readme_real_judge_commands

    from lima_eval.testing.openai_server import OpenAITestServer

    with OpenAITestServer(responder=longer_answer_judge) as server:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-test"}
        for command in _readme_real_judge_commands():
            args = _args(command, server.base_url)
            out = run_cli("run", *args, "--no-progress", cwd=tmp_path, env=env, timeout=900)
            assert out.returncode == 0, out.stderr[-3000:]
            assert "dropped judge.batch_size" in out.stderr and "generations: 0 new" in out.stderr, out.stderr
            label = "lima-pairwise:" + dict(a.split("=", 1) for a in args if "=" in a)["judge.model"]
            mine = [j for j in map(json.loads, (run_dir / "judgments.jsonl").open()) if j["judge"] == label]
            assert len(mine) == 120 and not any(j.get("error") for j in mine), label
        assert server.answered >= 240
