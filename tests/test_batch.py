"""The openai-batch backend against the local server's real Files and Batches endpoints: results equal to the
synchronous backend's, requests submitted exactly once across a kill and a resume, expired and partly failed
batches resubmitting only what is missing, the journal, half price, and bad options."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import assert_one_line_error, longer_answer_judge, run_cli, server_run_config

from lima_eval.config import load_config
from lima_eval.forecast import forecast
from lima_eval.pipeline import preflight, run
from lima_eval.store import RunStore
from lima_eval.testing.openai_server import OpenAITestServer

BATCH = {"backend": "openai-batch", "poll_interval": 0.05, "poll_max": 0.2}


def answers(body):
    if body["model"] in ("mine", "base"):
        last = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
        return f"{body['model']} says {last}" + ("!" * len(last) if body["model"] == "mine" else "")
    return longer_answer_judge(body)


def verdicts(cfg):
    return {(j.prompt_id, j.shown_first): (j.winner, j.error_kind) for j in RunStore(cfg.run_dir).judgments().values()}


def journal_entry(cfg, batch_id):
    """The journal file of the batch the server calls batch_id."""
    return next(p for p in sorted((cfg.run_dir / "batches").glob("*.json"))
                if json.loads(p.read_text())["batch_id"] == batch_id)


def batch_config(tmp_path, server, prompts_file, name="run", **extra):
    return load_config(server_run_config(tmp_path, server.base_url, {"name": "file", "path": str(prompts_file)},
                                         name=name, endpoint=BATCH | extra, judge={"order": "both"}))


def test_batch_run_equals_the_synchronous_run_and_submits_each_request_once(tmp_path, prompts_file):
    with OpenAITestServer(responder=answers, batch_delay=0.3) as server:
        cfg = batch_config(tmp_path, server, prompts_file, max_requests=4)
        result = run(cfg, show_progress=False)
        sync = load_config(server_run_config(tmp_path, server.base_url, {"name": "file", "path": str(prompts_file)},
                                             name="sync", judge={"order": "both"}))
        before = server.requests
        run(sync, show_progress=False)
        sync_calls = server.requests - before
    # 12 answers (6 prompts x 2 models) in batches of at most 4 lines, then 12 verdicts (6 pairs x 2 orders).
    assert server.submitted and set(server.submitted.values()) == {1}
    assert len(server.submitted) == 24 == sync_calls
    assert result.generations.calls == 12 and result.judgments.calls == 12
    sizes = sorted(b["request_counts"]["total"] for b in server.batches.values())
    assert max(sizes) <= 4 and sum(sizes) == 24
    assert verdicts(cfg) == verdicts(sync)
    assert any(e == "parse" for _, e in verdicts(cfg).values())  # p4's reply has no verdict: recorded, not a tie
    gens = RunStore(cfg.run_dir).generations().values()
    assert {g.text for g in gens} == {g.text for g in RunStore(sync.run_dir).generations().values()}
    journal = sorted((cfg.run_dir / "batches").glob("*.json"))
    assert len(journal) == len(server.batches)
    assert all(json.loads(p.read_text())["collected"] for p in journal)
    assert all(p.with_suffix(".output.jsonl").exists() for p in journal)
    # A rerun asks for nothing: every record is on disk.
    again = run(cfg, show_progress=False)
    assert again.calls == 0 and len(server.batches) == len(journal)


def test_a_run_killed_while_its_batch_runs_resumes_by_polling_it(tmp_path, prompts_file):
    with OpenAITestServer(responder=answers, batch_delay=4.0) as server:
        cfg_path = server_run_config(tmp_path, server.base_url, {"name": "file", "path": str(prompts_file)},
                                     endpoint=BATCH, judge={"order": "both"})
        env = dict(os.environ) | {"PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen([sys.executable, "-m", "lima_eval.cli", "run", str(cfg_path), "--no-progress"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not server.batches and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.batches, "the run never submitted a batch"
            time.sleep(0.3)  # it is polling now
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert len(server.batches) == 1 and server.batches["batch_1"]["status"] == "in_progress"
        cfg = load_config(cfg_path)
        result = run(cfg, show_progress=False)
    # The killed run's batch (the first model's 6 answers) was polled, not submitted again; the second model's
    # batch and the judge's followed.
    assert set(server.submitted.values()) == {1} and len(server.submitted) == 24
    assert result.generations.calls == 6 and result.generations.new == 12
    assert len(verdicts(cfg)) == 12


def test_a_batch_created_just_before_a_kill_is_found_by_its_file_not_submitted_again(tmp_path, prompts_file):
    with OpenAITestServer(responder=answers, batch_delay=0.1) as server:
        cfg = batch_config(tmp_path, server, prompts_file)
        run(cfg, show_progress=False)
        # As if the run had been killed after the create call reached the server and before the batch id was
        # journalled: the journal holds the file id only.
        job = journal_entry(cfg, "batch_1")
        job.write_text(json.dumps(json.loads(job.read_text()) | {"batch_id": None, "status": "uploaded",
                                                                 "collected": False}))
        for suffix in (".output.jsonl", ".errors.jsonl"):
            job.with_suffix(suffix).unlink(missing_ok=True)
        store = RunStore(cfg.run_dir)
        (cfg.run_dir / "generations.jsonl").unlink()
        del store
        batches = len(server.batches)
        result = run(cfg, show_progress=False)
        assert len(server.batches) == batches and result.generations.calls == 0
        assert json.loads(job.read_text())["batch_id"] == "batch_1"
        assert len(RunStore(cfg.run_dir).generations()) == 12


def one_batch_per_file(server):
    files = [b["input_file_id"] for b in server.batches.values()]
    return len(files) == len(set(files))


# Each fault makes the outcome of a create call unclear to the client, on every other call (the first, third, ...).
# The first three make the batch before the reply goes wrong; "503" makes none.
@pytest.mark.parametrize("fault, creates", [
    (("500", None), 3),  # the reply is lost
    (("timeout", 2.5), 3),  # the reply comes after the client's timeout (1 s)
    (("malformed", None), 3),  # the reply is not JSON
    (("503", None), 6),  # refused: the batch is created again
], ids=["500", "timeout", "malformed", "503"])
def test_a_batch_create_call_with_an_unclear_outcome_never_submits_a_line_twice(tmp_path, prompts_file, fault,
                                                                                creates):
    with OpenAITestServer(responder=answers, batch_delay=0.05,
                          batch_create_fault=lambda n: fault if n % 2 else None) as server:
        path = server_run_config(tmp_path, server.base_url, {"name": "file", "path": str(prompts_file)},
                                 endpoint=BATCH | {"timeout": 1.0, "max_retries": 1}, judge={"order": "both"})
        out = run_cli("run", str(path), "--no-progress")
        assert out.returncode == 0, out.stderr
    # One batch per model's answers, one for the judge: each made once, every line in exactly one of them.
    assert server.batch_creates == creates and len(server.batches) == 3 and one_batch_per_file(server)
    assert len(server.submitted) == 24 and set(server.submitted.values()) == {1}
    assert all(b["status"] == "completed" for b in server.batches.values())
    cfg = load_config(path)
    journal = [json.loads(p.read_text()) for p in sorted((cfg.run_dir / "batches").glob("*.json"))]
    assert sorted(j["batch_id"] for j in journal) == sorted(server.batches)
    assert all(j["collected"] and j["status"] == "completed" for j in journal)
    # The results were downloaded and used: every answer and verdict is the server's.
    gens = RunStore(cfg.run_dir).generations().values()
    assert len(gens) == 12 and not any(g.error for g in gens)
    assert all(g.text.startswith(f"{g.model} says ") for g in gens)
    assert len(verdicts(cfg)) == 12 and server.answered == 24


def test_a_batch_a_slow_server_makes_after_its_create_call_timed_out_is_cancelled(tmp_path, prompts_file):
    # The first create call times out (1 s); half a second later the server has no batch from the file, so it is
    # created again. Then the slow first call makes its batch too (at 2.5 s): the next poll cancels it.
    def slow_first(n):
        return ("late", 2.5) if n == 1 else None

    with OpenAITestServer(responder=answers, batch_delay=2.0, batch_create_fault=slow_first) as server:
        cfg = batch_config(tmp_path, server, prompts_file, timeout=1.0, max_retries=1)
        result = run(cfg, show_progress=False)
    kept, twin = server.batches["batch_1"], server.batches["batch_2"]
    assert kept["input_file_id"] == twin["input_file_id"] and server.batch_creates == 4
    assert kept["status"] == "completed" and twin["status"] == "cancelled" and twin["output_file_id"] is None
    assert json.loads(journal_entry(cfg, "batch_1").read_text())["create_calls"] == 2
    assert server.answered == 24  # each line answered once: the twin was cancelled before it answered any
    assert result.generations.errors == 0 and len(RunStore(cfg.run_dir).generations()) == 12
    assert len(verdicts(cfg)) == 12


def test_a_batch_that_cannot_be_created_is_a_bounded_error_and_the_next_run_creates_it_once(tmp_path,
                                                                                        prompts_file):
    down = {"on": True}
    with OpenAITestServer(responder=answers, batch_delay=0.05,
                          batch_create_fault=lambda n: ("503", None) if down["on"] else None) as server:
        path = server_run_config(tmp_path, server.base_url, {"name": "file", "path": str(prompts_file)},
                                 endpoint=BATCH | {"max_retries": 1}, judge={"order": "both"})
        out = run_cli("run", str(path), "--no-progress")
        last = out.stderr.strip().splitlines()[-1]  # after a warning per failed call
        assert out.returncode != 0 and "Traceback" not in out.stderr
        assert last.startswith("error: ") and "could not create a batch in 2 tries (Error code: 503" in last
        assert server.batch_creates == 2 and not server.batches
        down["on"] = False
        again = run_cli("run", str(path), "--no-progress")
    assert again.returncode == 0, again.stderr
    assert len(server.batches) == 3 and one_batch_per_file(server) and set(server.submitted.values()) == {1}
    assert len(RunStore(load_config(path).run_dir).generations()) == 12


def test_expired_and_failed_lines_are_resubmitted_alone(tmp_path, prompts_file):
    first: dict[str, str] = {}

    def policy(batch_no, custom_id, body):
        if batch_no == 1:  # the first batch: two lines fail, two are not reached before it expires
            first.setdefault(custom_id, ["error", "expire", "error", "expire"][len(first)] if len(first) < 4 else "")
            return first[custom_id] or None
        return None

    def fail_third(batch_no):
        return "the file is not valid JSONL" if batch_no == 3 else None

    with OpenAITestServer(responder=answers, batch_delay=0.1, batch_policy=policy, batch_fail=fail_third) as server:
        cfg = batch_config(tmp_path, server, prompts_file)
        result = run(cfg, show_progress=False)
    one, two = server.batches["batch_1"], server.batches["batch_2"]
    # One batch per model, then the judge's: batch 1 is the first model's 6 answers.
    assert one["status"] == "expired" and one["request_counts"] == {"total": 6, "completed": 2, "failed": 4}
    again = {json.loads(x)["custom_id"] for x in server.files[two["input_file_id"]]["data"].decode().splitlines()}
    assert again == {c for c, v in first.items() if v}  # only the four it did not answer
    assert server.batches["batch_3"]["status"] == "failed"  # the second model's fails validation: all resubmitted
    assert server.batches["batch_4"]["request_counts"]["total"] == 6
    assert server.batches["batch_5"]["request_counts"]["total"] == 12 and len(server.batches) == 5
    assert result.generations.errors == 0 and len(RunStore(cfg.run_dir).generations()) == 12
    assert len(verdicts(cfg)) == 12 and result.judgments.failed_calls == 0


def test_a_line_that_always_fails_becomes_a_call_error_retried_by_the_next_run(tmp_path, prompts_file):
    broken = {"on": True}

    def policy(batch_no, custom_id, body):
        text = json.dumps(body)
        return "error" if broken["on"] and body["model"] == "mine" and "two plus two" in text else None

    with OpenAITestServer(responder=answers, batch_delay=0.05, batch_policy=policy) as server:
        cfg = batch_config(tmp_path, server, prompts_file, resubmit=1)
        result = run(cfg, show_progress=False)
        failed = [g for g in RunStore(cfg.run_dir).generations().values() if g.error]
        assert result.generations.errors == 1 and len(failed) == 1
        assert failed[0].error.startswith("batch batch_2: HTTP 500: internal error")
        assert max(server.submitted.values()) == 2  # submitted once, resubmitted once (resubmit: 1), then given up
        broken["on"] = False
        again = run(cfg, show_progress=False)
    assert again.generations.calls == 1 and not any(g.error for g in RunStore(cfg.run_dir).generations().values())
    assert again.judgments.new == 2  # the pair that lacked an answer is judged now, in both orders


def test_a_malformed_answer_in_a_batch_is_asked_again(tmp_path, prompts_file):
    def policy(batch_no, custom_id, body):
        return "malformed" if batch_no == 1 and "two plus two" in json.dumps(body) else None

    with OpenAITestServer(responder=answers, batch_delay=0.05, batch_policy=policy) as server:
        cfg = batch_config(tmp_path, server, prompts_file)
        result = run(cfg, show_progress=False)
    assert server.batches["batch_2"]["request_counts"]["total"] == 1  # only the malformed line, again
    assert result.generations.errors == 0 and len(RunStore(cfg.run_dir).generations()) == 12


def test_a_refusal_in_a_batch_is_paid_for_so_it_is_recorded_not_asked_again(tmp_path, prompts_file):
    def policy(batch_no, custom_id, body):
        return "refusal" if body["model"] == "mine" and "two plus two" in json.dumps(body) else None

    with OpenAITestServer(responder=answers, batch_delay=0.05, batch_policy=policy) as server:
        cfg = batch_config(tmp_path, server, prompts_file)
        result = run(cfg, show_progress=False)
    refused = [g for g in RunStore(cfg.run_dir).generations().values() if g.error]
    assert len(refused) == 1 and result.generations.errors == 1
    assert refused[0].error.endswith("content is missing (finish_reason 'stop'; refusal \"I can't help with that.\")")
    assert set(server.submitted.values()) == {1}  # the refused line was not submitted again


def test_a_batch_the_server_no_longer_has_is_submitted_again(tmp_path, prompts_file):
    with OpenAITestServer(responder=answers, batch_delay=0.05) as server:
        cfg = batch_config(tmp_path, server, prompts_file)
        run(cfg, show_progress=False)
        job = journal_entry(cfg, "batch_1")
        job.write_text(json.dumps(json.loads(job.read_text()) | {"collected": False, "status": "in_progress"}))
        job.with_suffix(".output.jsonl").unlink()  # as if killed before the download
        (cfg.run_dir / "generations.jsonl").unlink()
        del server.batches["batch_1"]
        result = run(cfg, show_progress=False)
    assert json.loads(job.read_text())["status"] == "lost"
    assert result.generations.calls == 6 and len(RunStore(cfg.run_dir).generations()) == 12


def test_batch_prices_are_half_in_the_dry_run_and_the_report(tmp_path, prompts_file):
    with OpenAITestServer(responder=answers, batch_delay=0.05) as server:
        paths = {}
        for name, ep in (("batch", BATCH), ("sync", {})):
            paths[name] = server_run_config(tmp_path, server.base_url, {"name": "file", "path": str(prompts_file)},
                                            name=name, judge={"order": "both", "model": "gpt-4o"} | ep)
        judge = {}
        for n, p in paths.items():
            cfg = load_config(p)
            judge[n] = next(s.as_dict() for s in forecast(cfg, preflight(cfg)) if s.stage.startswith("judge"))
        printed = run_cli("run", str(paths["batch"]), "--dry-run").stdout
        assert f"{judge['batch']['cost_usd']:.4f}" in printed
        assert judge["batch"]["cost_usd"] == pytest.approx(judge["sync"]["cost_usd"] / 2, abs=1e-4)
        assert judge["batch"]["batch_cost_usd"] == judge["sync"]["batch_cost_usd"]
        for p in paths.values():
            run(load_config(p), show_progress=False)
    costs = {n: json.loads((load_config(p).run_dir / "report" / "summary.json").read_text())["judges"][0]["cost_usd"]
             for n, p in paths.items()}
    assert costs["sync"] > 0 and costs["batch"] == pytest.approx(costs["sync"] / 2)


@pytest.mark.parametrize("option, value, message", [
    ("poll_interval", 0, "config key 'judge.poll_interval': 0.0 is out of range (must be > 0)"),
    ("poll_max", -1, "config key 'judge.poll_max': -1.0 is out of range (must be > 0)"),
    ("timeout", 0, "config key 'judge.timeout': 0.0 is out of range (must be > 0)"),
    ("max_requests", 0, "config key 'judge.max_requests': 0 is out of range (must be >= 1)"),
    ("resubmit", -1, "config key 'judge.resubmit': -1 is out of range (must be >= 0)"),
    ("poll_interval", "soon", "config key 'judge.poll_interval'"),
    ("completion_window", 24, "config key 'judge.completion_window'"),
    ("poll_every", 1, "config key 'judge.poll_every'"),
])
def test_bad_batch_options_are_named_before_anything_is_written(tmp_path, prompts_file, option, value, message):
    path = server_run_config(tmp_path, "http://127.0.0.1:9/v1", {"name": "file", "path": str(prompts_file)},
                             judge=BATCH | {option: value})
    out = run_cli("run", str(path), "--no-progress")
    assert_one_line_error(out, message)
    assert not (tmp_path / "results").exists()


def test_a_damaged_journal_is_a_one_line_error_and_is_left_alone(tmp_path, prompts_file):
    with OpenAITestServer(responder=answers, batch_delay=0.05) as server:
        path = server_run_config(tmp_path, server.base_url, {"name": "file", "path": str(prompts_file)},
                                 endpoint=BATCH)
        cfg = load_config(path)
        (cfg.run_dir / "batches").mkdir(parents=True)
        bad = cfg.run_dir / "batches" / "0-broken.json"
        bad.write_text("{not json")
        out = run_cli("run", str(path), "--no-progress")
    assert_one_line_error(out, "0-broken.json: the batch journal is damaged")
    assert bad.read_text() == "{not json" and not server.batches


def test_the_journal_never_holds_the_api_key(tmp_path, prompts_file, monkeypatch):
    monkeypatch.setenv("SECRET_KEY_VAR", "sk-test-very-secret-123")
    with OpenAITestServer(responder=answers, batch_delay=0.05) as server:
        cfg = batch_config(tmp_path, server, prompts_file, api_key_env="SECRET_KEY_VAR")
        run(cfg, show_progress=False)
    for p in Path(cfg.run_dir).rglob("*"):
        if p.is_file():
            assert b"sk-test-very-secret-123" not in p.read_bytes(), p
