"""Kill a real `lima-eval run` process mid-run, run it again, and check nothing is missing or duplicated."""

import json
import os
import signal
import subprocess
import sys
import time

from conftest import longer_answer_judge, write_config

from lima_eval.testing.openai_server import OpenAITestServer, echo


def responder(body):
    text = body["messages"][-1]["content"]
    return longer_answer_judge(body) if "[Answer A]" in text else echo(body)


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_kill_and_rerun_finishes_the_rest_without_duplicates(tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Question number {i}?"}) + "\n"
                               for i in range(20)))
    with OpenAITestServer(responder=responder, latency=0.1) as server:
        endpoint = {"backend": "openai", "base_url": server.base_url, "concurrency": 1, "max_retries": 0}
        cfg = write_config(tmp_path / "c.yaml", {
            "name": "resume", "output_dir": str(tmp_path / "results"),
            "benchmark": {"name": "file", "path": str(prompts)},
            "models": [{"name": "mine", "model": "m1", **endpoint}, {"name": "base", "model": "m2", **endpoint}],
            "baselines": ["base"],
            "judge": {"model": "judge", "order": "random", **endpoint},
        })
        gens_file = tmp_path / "results" / "resume" / "generations.jsonl"
        cmd = [sys.executable, "-m", "lima_eval.cli", "run", str(cfg), "--no-progress"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 60
        while len(lines(gens_file)) < 12 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        done_before = len(lines(gens_file))
        assert 12 <= done_before < 40, "the run was not interrupted mid-way"
        requests_before = server.requests

        rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        assert rerun.returncode == 0, rerun.stderr
        assert f"generations: {40 - done_before} new, {done_before} already on disk" in rerun.stderr

    gens = lines(gens_file)
    keys = [(g["prompt_id"], g["model"]) for g in gens]
    assert len(keys) == len(set(keys)) == 40  # nothing missing, nothing twice
    judgments = lines(tmp_path / "results" / "resume" / "judgments.jsonl")
    assert sorted(j["prompt_id"] for j in judgments) == sorted(f"q{i}" for i in range(20))
    # Only what was not saved was asked again: the rerun's generation requests cover the missing ones
    # (plus at most the one chunk that was in flight when the process died).
    assert server.requests - requests_before == (40 - done_before) + 20
    assert requests_before - done_before <= 4
