from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lima_eval.testing.openai_server import OpenAITestServer

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def private_judge_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own judge cache, so one test's replies never answer another's requests."""
    path = tmp_path / "judge-cache.sqlite"
    monkeypatch.setenv("LIMA_EVAL_JUDGE_CACHE", str(path))
    return path


@pytest.fixture
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED


def longer_answer_judge(body: dict[str, Any]) -> str:
    """A judge for the test server: prefers the longer answer, says 'neither' on equal length,
    and refuses (an unparseable reply) when the prompt contains NO-VERDICT."""
    text = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    if "NO-VERDICT" in text:
        return "I cannot decide between these."
    m = re.search(r"\[Answer A\]\n(.*)\n\n\[Answer B\]\n(.*)\n\nReply with", text, re.DOTALL)
    assert m, "the judge template changed; update the test judge"
    a, b = len(m.group(1)), len(m.group(2))
    return "Verdict: neither" if a == b else ("Verdict: A" if a > b else "Verdict: B")


@pytest.fixture
def judge_server():
    with OpenAITestServer(responder=longer_answer_judge) as server:
        yield server


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def server_run_config(tmp_path: Path, base_url: str, benchmark: dict[str, Any], name: str = "run",
                      endpoint: dict[str, Any] | None = None, model_ids: tuple[str, str] = ("mine", "base"),
                      model_extra: dict[str, Any] | None = None, judge: dict[str, Any] | None = None,
                      judges: tuple[dict[str, Any], ...] = (), **top: Any) -> Path:
    """A run config whose two models ("mine" under test, "base" the baseline) and judge(s) all talk to one
    OpenAI-compatible test server; the server sees the models as `model_ids`."""
    ep = {"backend": "openai", "base_url": base_url, "max_retries": 0, "concurrency": 4} | (endpoint or {})
    data = {
        "name": name, "output_dir": str(tmp_path / "results"), "benchmark": benchmark,
        "models": [{"name": n, "model": m, **ep, **(model_extra or {})} for n, m in zip(("mine", "base"), model_ids)],
        "baselines": ["base"],
        # One order per pair (so counts are per pair) unless a test asks for the default, both orders.
        "judge": {"model": "gpt-4o", "order": "random", **ep, **(judge or {})},
        "judges": [{"model": "gpt-4o", "order": "random", **ep, **j} for j in judges],
    } | top
    return write_config(tmp_path / f"{name}.yaml", data)


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    full_env = dict(os.environ) | {"TRANSFORMERS_VERBOSITY": "error"} | (env or {})
    return subprocess.run([sys.executable, "-m", "lima_eval.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def assert_one_line_error(out: subprocess.CompletedProcess, message: str) -> None:
    """A command refused bad input as it should: non-zero exit, one `error:` line holding `message`, no traceback."""
    assert out.returncode != 0, out.stdout
    assert out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert message in out.stderr, out.stderr


@pytest.fixture
def prompts_file(tmp_path: Path) -> Path:
    """Six prompts; one asks the test judge for no verdict."""
    path = tmp_path / "prompts.jsonl"
    rows = [
        {"id": "p1", "prompt": "Name a colour.", "category": "easy"},
        {"id": "p2", "prompt": "Write one word about the sea.", "category": "writing"},
        {"id": "p3", "prompt": "What is two plus two?", "category": "math"},
        {"id": "p4", "prompt": "Say hello. NO-VERDICT", "category": "easy"},
        {"id": "p5", "prompt": "Give a fruit.", "category": "easy"},
        {"id": "p6", "prompt": "Describe rain briefly.", "category": "writing"},
    ]

    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def pytest_collection_modifyitems(config, items):
    """gpu tests run only where CUDA is present."""
    if not any("gpu" in item.keywords for item in items):
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="no CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def chromium() -> str:
    """Headless Chromium (Debian's `chromium`, installed by .ci/run). Missing is a failure on CI."""
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed (.ci/run installs it with apt-get)")
    pytest.skip("chromium is not installed")


def browse(chromium: str, page: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium on a local file (root in containers needs --no-sandbox)."""
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=3000",
           *args, page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def figures_run(tmp_path: Path) -> Path:
    """Two models under test against one baseline, judged pairwise and rated (scripted), four prompts: a run
    with both report figures."""
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Question {i}?"}) + "\n" for i in range(4)))
    cfg = {"name": "r", "output_dir": str(tmp_path / "results"), "benchmark": {"name": "file", "path": str(prompts)},
           "models": [{"name": "mine", "backend": "scripted", "model": "echo"},
                      {"name": "other", "backend": "scripted", "model": "fixed:another answer"},
                      {"name": "base", "backend": "scripted", "model": "fixed:ok"}],
           "baselines": ["base"], "judge": {"backend": "scripted", "model": "cycle:Verdict: A|Verdict: B"},
           "judges": [{"name": "lima-absolute", "backend": "scripted", "model": "cycle:Rating: pass|Rating: fail"}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    out = run_cli("run", str(tmp_path / "c.yaml"), "--no-progress")
    assert out.returncode == 0, out.stderr
    return tmp_path / "results" / "r"
