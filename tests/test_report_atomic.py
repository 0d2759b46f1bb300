"""A report is written whole or not at all (issue 25): each file goes to a temporary name and is renamed into
place, the freshness stamp is removed before the first file is rewritten and written after the last, so a
report killed half-way is rebuilt by the next run instead of being taken as finished."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli, write_config

from lima_eval.report.build import finite
from lima_eval.report.freshness import STAMP
from lima_eval.store import write_atomic


def strict(text: str):
    """json.loads that refuses NaN and Infinity, as strict JSON readers (JavaScript, jq, Go) do."""
    def refuse(name):
        raise ValueError(f"bare {name}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def finished(tmp_path) -> Path:
    data = {"name": "r", "output_dir": str(tmp_path / "results"), "benchmark": "demo",
            "models": [{"name": "a", "backend": "scripted", "model": "echo"},
                       {"name": "b", "backend": "scripted", "model": "cycle:short|a longer answer"}],
            "baselines": ["b"], "judge": {"backend": "scripted", "model": "cycle:Verdict: A|Verdict: B"},
            "judges": [{"name": "lima-absolute", "backend": "scripted", "model": "cycle:Rating: pass|Rating: fail"}]}
    cfg = write_config(tmp_path / "c.yaml", data)
    out = run_cli("run", str(cfg), "--no-progress")
    assert out.returncode == 0, out.stderr
    return tmp_path / "results" / "r"


def test_a_report_killed_while_writing_is_rebuilt_by_the_next_run(finished, tmp_path):
    report = finished / "report"
    assert (report / STAMP).exists()
    filled = {p.name for p in report.iterdir() if p.stat().st_size > 0}  # (a CSV of no rows is empty)
    proc = subprocess.Popen([sys.executable, "-m", "lima_eval.cli", "report", str(finished)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while (report / STAMP).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)  # the moment the rebuild began rewriting the report
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the report finished before it could be killed"
    assert not (report / STAMP).exists(), "a report being rewritten kept the stamp of the one before"
    for path in report.iterdir():  # every file is the old one or the new one, never torn or empty
        if path.name in filled:
            assert path.stat().st_size > 0, path
    strict((report / "summary.json").read_text())
    killed_at = time.time_ns()
    rerun = run_cli("run", str(tmp_path / "c.yaml"), "--no-progress")
    assert rerun.returncode == 0, rerun.stderr
    assert (report / STAMP).exists() and not list(report.glob("*.tmp")) and not list(report.glob(".*.tmp"))
    assert (report / "summary.json").stat().st_mtime_ns > killed_at  # rebuilt, not taken as finished
    assert strict((report / "summary.json").read_text())["rows"]
    stamped = (report / STAMP).stat().st_mtime_ns
    again = run_cli("run", str(tmp_path / "c.yaml"), "--no-progress")
    assert again.returncode == 0 and (report / STAMP).stat().st_mtime_ns == stamped  # now current: kept


def test_summary_json_is_strict_json(finished):
    summary = strict((finished / "report" / "summary.json").read_text())
    assert summary["rows"] and summary["ratings"]


@pytest.mark.parametrize("value,expected", [
    (math.nan, None), (math.inf, None), (-math.inf, None), (1.5, 1.5), (0, 0), ("nan", "nan"), (None, None),
    ({"a": [1.0, math.nan, {"b": math.inf}], "c": (math.nan, 2)}, {"a": [1.0, None, {"b": None}], "c": [None, 2]}),
])
def test_non_finite_numbers_become_null(value, expected):
    assert finite(value) == expected


def test_write_atomic_leaves_the_old_file_when_the_new_one_cannot_be_written(tmp_path):
    path = tmp_path / "summary.json"
    write_atomic(path, '{"old": true}')
    with pytest.raises(TypeError):
        write_atomic(path, 12345)  # type: ignore[arg-type]  # not text or bytes: fails before the rename
    assert path.read_text() == '{"old": true}' and [p.name for p in tmp_path.iterdir()] == ["summary.json"]
