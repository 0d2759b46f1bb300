"""`lima-eval run --dry-run`: the bill before paying it. Nothing is written or called; the counts and token
estimates are checked by hand, and a run that is done (or whose judge replies are cached) forecasts nothing."""

from __future__ import annotations

import json
import math

import pytest
from conftest import assert_one_line_error, run_cli, write_config

PROMPTS = [{"id": "p1", "prompt": "Name a colour."}, {"id": "p2", "prompt": "Write one line about the sea, please."}]


def setup(tmp_path, backend="openai"):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in PROMPTS))
    if backend == "openai":
        ep = {"backend": "openai", "base_url": "http://127.0.0.1:9/v1"}  # never called: a dry run opens nothing
        models = [{"name": "mini", "model": "gpt-4o-mini", **ep, "sampling": {"max_new_tokens": 100}},
                  {"name": "base", "model": "gpt-4o-mini", **ep, "sampling": {"max_new_tokens": 50}}]
        judge = {"model": "gpt-4o", "cache_path": str(tmp_path / "cache.sqlite"), **ep}
    else:
        models = [{"name": "mini", "backend": "scripted", "model": "echo"},
                  {"name": "base", "backend": "scripted", "model": "fixed:plain"}]
        judge = {"backend": "scripted", "model": "cycle:Verdict: A|Verdict: B",
                 "cache_path": str(tmp_path / "c.sqlite")}
    data = {"name": "f", "output_dir": str(tmp_path / "results"), "benchmark": {"name": "file", "path": str(prompts)},
            "models": models, "baselines": ["base"], "judge": judge}
    return write_config(tmp_path / "c.yaml", data)


def lines(out):
    """stage -> its 8 figures (requests, on disk, cached, to do, tokens in, tokens out, cost, batch cost)."""
    rows = {}
    for line in out.splitlines():
        if line.startswith(("generate ", "judge ")):
            parts = line.split()
            rows[" ".join(parts[:-8])] = parts[-8:]
    return rows


def test_a_fresh_run_forecast_writes_nothing_and_counts_by_hand(tmp_path):
    cfg = setup(tmp_path)
    out = run_cli("run", str(cfg), "--dry-run", env={"OPENAI_API_KEY": "sk-test"})
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache.sqlite").exists()
    rows = lines(out.stdout)
    # generate: 2 prompts each; input = ceil(chars / 4); output = max_new_tokens per request (an upper bound).
    tokens_in = sum(math.ceil(len(p["prompt"]) / 4) for p in PROMPTS)
    assert rows["generate mini"][:6] == ["2", "0", "0", "2", str(tokens_in), "200"]
    assert rows["generate base"][:6] == ["2", "0", "0", "2", str(tokens_in), "100"]
    # cost: gpt-4o-mini at 0.15 / 0.60 USD per 1M tokens; batch half of it.
    cost = (tokens_in * 0.15 + 200 * 0.60) / 1e6
    assert rows["generate mini"][6] == f"{cost:.4f}" and rows["generate mini"][7] == f"{cost / 2:.4f}"
    judge = rows["judge lima-pairwise:gpt-4o"]
    assert judge[:4] == ["4", "0", "0", "4"]  # 2 prompts x both orders, answers not generated yet
    assert "total:" in out.stdout


def test_a_finished_run_forecasts_nothing_and_the_cache_counts(tmp_path):
    cfg = setup(tmp_path, backend="scripted")
    assert run_cli("run", str(cfg), "--no-progress").returncode == 0
    before = sorted(p.name for p in (tmp_path / "results" / "f").iterdir())
    out = run_cli("run", str(cfg), "--dry-run")
    assert out.returncode == 0, out.stderr
    rows = lines(out.stdout)
    judge = next(v for k, v in rows.items() if k.startswith("judge"))
    assert rows["generate mini"][:4] == ["2", "2", "0", "0"] and judge[:4] == ["4", "4", "0", "0"]
    # The judgments gone from disk: the judge cache still holds every reply, so nothing is to do.
    (tmp_path / "results" / "f" / "judgments.jsonl").unlink()
    out = run_cli("run", str(cfg), "--dry-run")
    judge = next(v for k, v in lines(out.stdout).items() if k.startswith("judge"))
    assert judge[:4] == ["4", "0", "4", "0"], out.stdout
    # With --no-cache the run would ask again: so does the forecast.
    out = run_cli("run", str(cfg), "--dry-run", "--no-cache")
    judge = next(v for k, v in lines(out.stdout).items() if k.startswith("judge"))
    assert judge[:4] == ["4", "0", "0", "4"], out.stdout
    assert sorted(p.name for p in (tmp_path / "results" / "f").iterdir()) == [n for n in before
                                                                                if n != "judgments.jsonl"]


def test_a_dry_run_checks_the_config_first(tmp_path):
    cfg = setup(tmp_path)
    out = run_cli("run", str(cfg), "--dry-run", "--set", "judge.concurrency=0")
    assert_one_line_error(out, "judge.concurrency")


def test_a_budget_stops_before_the_stage_that_would_exceed_it(tmp_path):
    """gpt-4o-mini answers, a gpt-4o judge, all on the local server. A budget below the answers' estimate stops
    before anything is asked; one that covers the answers but not the judge stops after them, saying what a
    rerun needs; that budget then finishes the run without asking for the answers again."""
    import re

    import yaml

    from lima_eval.config import load_config
    from lima_eval.forecast import forecast
    from lima_eval.pipeline import preflight
    from lima_eval.testing.openai_server import OpenAITestServer

    def reply(body):
        return "Verdict: A" if body["model"] == "gpt-4o" else "An answer."

    with OpenAITestServer(responder=reply) as server:
        cfg_path = setup(tmp_path)
        data = yaml.safe_load(cfg_path.read_text())
        for section in [*data["models"], data["judge"]]:
            section["base_url"] = server.base_url
        write_config(cfg_path, data)
        env = {"OPENAI_API_KEY": "sk-test"}
        cfg = load_config(cfg_path)
        stages = forecast(cfg, preflight(cfg))
        gen = sum(s.cost for s in stages if s.stage.startswith("generate"))
        out = run_cli("run", str(cfg_path), "--no-progress", "--set", f"budget_usd={gen / 2}", env=env)
        assert out.returncode == 1 and "budget: the generate stage would cost" in out.stderr
        assert server.requests == 0 and not (tmp_path / "results" / "f" / "generations.jsonl").exists()
        out = run_cli("run", str(cfg_path), "--no-progress", "--set", f"budget_usd={gen * 1.01}", env=env)
        assert out.returncode == 1 and "budget: the judge stage would cost" in out.stderr, out.stderr
        assert "done so far: the answers" in out.stderr and server.requests == 4
        need = float(re.search(r"budget_usd >= ([0-9.]+)", out.stderr).group(1))
        done = run_cli("run", str(cfg_path), "--no-progress", "--set", f"budget_usd={need}", env=env)
        assert done.returncode == 0, done.stderr
        assert server.requests == 4 + 4  # the judge's two orders of two prompts; no answer asked again


@pytest.mark.parametrize("value,message", [
    ("-1", "config key 'budget_usd': -1.0 is out of range"),
    ("cheap", "config key 'budget_usd': expected float"),
    (".nan", "config key 'budget_usd': nan is out of range"),
])
def test_bad_budgets_are_named(tmp_path, value, message):
    out = run_cli("run", str(setup(tmp_path)), "--no-progress", "--set", f"budget_usd={value}",
                  env={"OPENAI_API_KEY": "sk-test"})
    assert_one_line_error(out, message)
    assert not (tmp_path / "results").exists()
