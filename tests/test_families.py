"""Model families and the self-preference warning: the guesses on a table of real model ids, `family:` in a
config, and a run on the local OpenAI-compatible server where a judge favours its own family."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from conftest import run_cli, server_run_config, write_config

from lima_eval.config import load_config
from lima_eval.families import guess
from lima_eval.pipeline import run
from lima_eval.testing.openai_server import OpenAITestServer


@pytest.mark.parametrize("model,family", [
    ("gpt-4o", "gpt"), ("gpt4_1106_preview", "gpt"), ("o1-preview", "gpt"), ("text_davinci_003", "gpt"),
    ("claude-2", "claude"), ("anthropic/claude-3-5-sonnet", "claude"),
    ("meta-llama/Meta-Llama-3-8B-Instruct", "llama"), ("vicuna-13b-v1.3", "llama"), ("alpaca-7b", "llama"),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mistral"), ("zephyr-7b-beta", "mistral"),
    ("Qwen/Qwen2.5-72B-Instruct", "qwen"), ("gemini-pro", "gemini"), ("embedded:gemma3-270m", "gemma"),
    ("embedded:smollm2-135m-instruct", "smollm"), ("EleutherAI/gpt-j-6b", "eleuther"), ("olmo-7b", "olmo"),
    ("gpt4all-13b-snoozy", "llama"), ("/models/llama-3-8b-sft", "llama"), ("tiny-random", ""), ("my-model", ""),
    ("", ""),
])
def test_families_are_guessed_from_model_ids(model, family):
    assert guess(model) == family


ANSWER = {"gpt-4o-mini": "ANSWER-GPT", "claude-3-haiku": "ANSWER-CLAUDE"}


def responder(body):
    """The two models answer with their marker; judge gpt-4o always picks the GPT answer; judge llama-3-70b picks
    it on p1 and p2 only."""
    text = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    if body["model"] in ANSWER:
        return ANSWER[body["model"]]
    pid = re.search(r"Question (p\d)", text).group(1)
    picks_gpt = body["model"] == "gpt-4o" or pid in ("p1", "p2")
    gpt_first = text.index("ANSWER-GPT") < text.index("ANSWER-CLAUDE")
    return "Verdict: A" if picks_gpt == gpt_first else "Verdict: B"


def prompts(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Question p{i}?"}) + "\n" for i in range(1, 7)))
    return path


def test_a_judge_of_a_models_family_is_flagged_with_other_judges_rates(tmp_path):
    with OpenAITestServer(responder=responder) as server:
        path = server_run_config(tmp_path, server.base_url, {"name": "file", "path": str(prompts(tmp_path))},
                                 model_ids=("gpt-4o-mini", "claude-3-haiku"), judges=({"model": "llama-3-70b"},))
        cfg = load_config(path)
        run(cfg, show_progress=False)
    summary = json.loads((cfg.run_dir / "report" / "summary.json").read_text())
    (entry,) = summary["self_preference"]
    assert (entry["judge"], entry["family"], entry["own_model"], entry["other_model"]) == (
        "lima-pairwise:gpt-4o", "gpt", "mine", "base")
    assert entry["judge_rate"]["win_rate"] == 1.0 and entry["judge_rate"]["prompts"] == 6
    (other,) = entry["others"]
    assert other["judge"] == "lima-pairwise:llama-3-70b"
    assert other["their_rate"]["win_rate"] == pytest.approx(2 / 6, abs=1e-4) and other["their_rate"]["prompts"] == 6
    lo, hi = other["their_rate"]["ci"]
    assert lo < 2 / 6 < hi < 1.0  # the other judge's interval excludes the own-family judge's 100%
    md = (cfg.run_dir / "report" / "report.md").read_text()
    assert "Self-preference risk: `lima-pairwise:gpt-4o` is of the gpt family, as is `mine`" in md
    assert "`lima-pairwise:llama-3-70b` gives 33.3%" in md


def test_family_in_the_config_wins_and_a_lone_judge_says_how_to_compare(tmp_path):
    """`family:` names a family no model id shows (a private fine-tune); with no other judge the note says
    what to add. Both sides of one family: nothing to prefer, no note."""
    with OpenAITestServer(responder=responder) as server:
        path = server_run_config(tmp_path, server.base_url, {"name": "file", "path": str(prompts(tmp_path))},
                                 model_ids=("gpt-4o-mini", "claude-3-haiku"))
        data = yaml.safe_load(path.read_text())
        data["models"][1]["family"] = "GPT"  # "claude-3-haiku" declared a gpt: both sides now gpt
        write_config(path, data)
        cfg = load_config(path)
        run(cfg, show_progress=False)
        summary = json.loads((cfg.run_dir / "report" / "summary.json").read_text())
        assert summary["self_preference"] == []
        data["models"][1]["family"] = ""
        data["judge"]["family"] = "claude"  # the judge declared a claude: it judges `base`'s family
        data["name"] = "second"
        write_config(path, data)
        cfg = load_config(path)
        run(cfg, show_progress=False)
    summary = json.loads((cfg.run_dir / "report" / "summary.json").read_text())
    (entry,) = summary["self_preference"]
    assert (entry["family"], entry["own_model"], entry["judge_rate"]["win_rate"], entry["others"]) == (
        "claude", "base", 0.0, [])
    assert "no other judge labelled this pair" in (cfg.run_dir / "report" / "report.md").read_text()


@pytest.mark.parametrize("where,value,message", [
    ("models.0.family", 3, "config key 'models.0.family': expected str"),
    ("judge.family", ["gpt"], "config key 'judge.family': expected str"),
    ("judge.family", "gpt\x00", "has a NUL character"),
])
def test_bad_families_are_named(tmp_path, where, value, message):
    data = {"name": "run", "output_dir": str(tmp_path / "results"), "benchmark": "demo",
            "models": [{"name": n, "backend": "scripted", "model": "echo"} for n in ("mine", "base")],
            "baselines": ["base"], "judge": {"backend": "scripted", "model": "fixed:Verdict: A"}}
    section, key = where.rsplit(".", 1)
    node = data
    for part in section.split("."):
        node = node[int(part)] if part.isdigit() else node[part]
    node[key] = value
    out = run_cli("run", str(write_config(tmp_path / "c.yaml", data)), "--no-progress")
    assert out.returncode != 0 and message in out.stderr, out.stderr
    assert not (tmp_path / "results").exists()


def test_a_jury_with_a_juror_of_the_family_is_flagged_through_that_juror(tmp_path):
    with OpenAITestServer(responder=responder) as server:
        path = server_run_config(tmp_path, server.base_url, {"name": "file", "path": str(prompts(tmp_path))},
                                 model_ids=("gpt-4o-mini", "claude-3-haiku"))
        data = yaml.safe_load(path.read_text())
        ep = {k: v for k, v in data["judge"].items() if k not in ("model", "order")}
        data["judge"] = {"order": "random",
                         "jury": [ep | {"model": m} for m in ("gpt-4o", "llama-3-70b", "mistral-large")]}
        cfg = load_config(write_config(path, data))
        run(cfg, show_progress=False)
    (entry,) = json.loads((cfg.run_dir / "report" / "summary.json").read_text())["self_preference"]
    # The gpt juror is outvoted on p3-p6: the jury gives its family's model 2 of 6.
    assert (entry["judge"], entry["via"], entry["judge_rate"]["win_rate"]) == (
        "jury:gpt-4o+llama-3-70b+mistral-large", "lima-pairwise:gpt-4o", pytest.approx(2 / 6, abs=1e-4))
