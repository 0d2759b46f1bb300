"""One writer per run folder: a second `run` (or import, or report) is refused with a one-line error naming the
holder, or waits with --wait; a crashed holder leaves no stale lock."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import write_config

from lima_eval.errors import RunLockedError
from lima_eval.lock import LOCK, RunLock

HOLD = """
import sys, time
from lima_eval.lock import RunLock
with RunLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def holder(folder, seconds):
    """Another process holding the run folder's lock for `seconds`; returns once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def scripted_config(tmp_path, prompts_file):
    return write_config(tmp_path / "c.yaml", {
        "name": "locked", "output_dir": str(tmp_path / "results"),
        "benchmark": {"name": "file", "path": str(prompts_file)},
        "models": [{"name": "mine", "backend": "scripted", "model": "echo"},
                   {"name": "base", "backend": "scripted", "model": "fixed:ok"}],
        "baselines": ["base"], "judge": {"backend": "scripted", "model": "fixed:Verdict: A"},
    })


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "lima_eval.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


def test_a_second_run_is_refused_while_one_writes_and_waits_with_wait(tmp_path, prompts_file):
    config = scripted_config(tmp_path, prompts_file)
    folder = tmp_path / "results" / "locked"
    proc = holder(folder, 4)
    try:
        refused = cli("run", config, "--no-progress", "--no-cache", cwd=tmp_path)
        assert refused.returncode == 1
        line = refused.stderr.strip()
        assert len(line.splitlines()) == 1 and f"pid {proc.pid}" in line and "--wait" in line, line
        assert sorted(p.name for p in folder.iterdir()) == [LOCK]  # nothing written
        started = time.monotonic()
        waited = cli("run", config, "--wait", "--no-cache", cwd=tmp_path)
        assert waited.returncode == 0, waited.stderr[-2000:]
        assert "waiting for it to finish" in waited.stderr and time.monotonic() - started > 1
        assert (folder / "judgments.jsonl").read_text().count("\n") == 12
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path, prompts_file):
    folder = tmp_path / "results" / "locked"
    proc = holder(folder, 60)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (folder / LOCK).read_text()  # the dead holder's note is still there...
    done = cli("run", scripted_config(tmp_path, prompts_file), "--no-progress", "--no-cache", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]  # ... but the lock was the kernel's, and went with it


def test_imports_and_reports_take_the_lock_too_and_a_run_holds_it_through_its_report(tmp_path, prompts_file):
    from lima_eval.answers import import_answers
    from lima_eval.report.build import build_report

    assert cli("run", scripted_config(tmp_path, prompts_file), "--no-progress", cwd=tmp_path).returncode == 0
    folder = tmp_path / "results" / "locked"
    proc = holder(folder, 30)
    try:
        with pytest.raises(RunLockedError, match=f"pid {proc.pid}"):
            build_report(folder)
        with pytest.raises(RunLockedError):
            import_answers(folder, tmp_path / "answers.jsonl", "mine")
    finally:
        proc.kill()
        proc.wait()
    with RunLock(folder), RunLock(folder):  # nested in one process: one lock, released once at the end
        build_report(folder)
    assert not (folder / LOCK).read_text()


def test_a_failed_import_into_a_new_folder_leaves_no_folder(tmp_path):
    from lima_eval.errors import LimaEvalError
    from lima_eval.judging.foreign import import_judgments

    bad = tmp_path / "annotations.json"
    bad.write_text('[{"instruction": 1}]')
    with pytest.raises(LimaEvalError):
        import_judgments(tmp_path / "new-run", bad, "alpaca-eval")
    assert not (tmp_path / "new-run").exists()


def test_two_concurrent_runs_pay_for_each_request_once(tmp_path, prompts_file):
    """Two `run`s started together on one folder against a slow server: one runs, the other waits (--wait) and
    then finds everything on disk; the server saw each request once."""
    from conftest import server_run_config

    from lima_eval.testing.openai_server import OpenAITestServer

    with OpenAITestServer(latency=0.05) as server:
        config = server_run_config(tmp_path, server.base_url, {"name": "file", "path": str(prompts_file)},
                                   name="both", judge={"cache": False})
        env = dict(os.environ, OPENAI_API_KEY="unused")
        procs = [subprocess.Popen([sys.executable, "-m", "lima_eval.cli", "run", str(config), "--no-progress",
                                   "--wait"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] in ([0, 0], [1, 1]), outs  # both finish alike (the test judge's
        # NO-VERDICT prompt is an unreadable reply, not a failure)
        first_run = 6 * 2 + 6  # two models' answers, one judgment per pair (order random)
        assert server.requests == first_run, (server.requests, outs)
        assert sum("waiting for it to finish" in err for _, err in outs) == 1
    lines = (tmp_path / "results" / "both" / "judgments.jsonl").read_text().splitlines()
    assert len(lines) == len({json.loads(x)["id"] for x in lines}) == 6  # no duplicate lines
