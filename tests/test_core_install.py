"""The core install (no torch, no transformers) judges through an API, imports labels, reports, builds a
leaderboard and checks; asking for a local model names the extra to install. The local-model packages are
blocked in the CLI's process, as if they had never been installed."""

import os
import subprocess
import sys

import pytest
from conftest import longer_answer_judge, server_run_config

from lima_eval.testing.openai_server import OpenAITestServer

LOCAL_ONLY = ("torch", "transformers", "accelerate", "safetensors", "gguf", "vllm", "peft")

BLOCKED_CLI = f"""
import importlib.abc, runpy, sys

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {LOCAL_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
sys.argv = ["lima-eval"] + sys.argv[1:]
runpy.run_module("lima_eval.cli", run_name="__main__")
"""


def core_cli(*args, cwd=None):
    env = dict(os.environ) | {"TRANSFORMERS_VERBOSITY": "error"}
    return subprocess.run([sys.executable, "-c", BLOCKED_CLI, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def responder(body):
    text = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    if "[Answer A]" in text:
        return longer_answer_judge(body)
    return {"mine": "a long and careful answer", "base": "short"}[body["model"]]


def test_api_judging_labels_report_leaderboard_and_check_need_no_local_model_packages(tmp_path, prompts_file):
    with OpenAITestServer(responder=responder) as server:
        config = server_run_config(tmp_path, server.base_url, {"name": "file", "path": str(prompts_file)})
        first = core_cli("run", config, "--no-progress")
        assert first.returncode == 0, first.stderr[-2000:]
    run_dir = tmp_path / "results" / "run"
    labels = tmp_path / "labels.csv"
    labels.write_text("prompt_id,model_a,model_b,label,annotator\np1,mine,base,a,ann\n")
    for args in (("check", run_dir, "--against", run_dir, "--max-drop", "0.5"), ("import-human", run_dir, labels),
                 ("report", run_dir), ("leaderboard", tmp_path / "results", "--out", tmp_path / "board")):
        proc = core_cli(*args)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        assert "No module named" not in proc.stderr
    assert (run_dir / "report" / "report.html").exists() and (tmp_path / "board" / "leaderboard.md").exists()


@pytest.mark.parametrize("model,extra", [
    ("embedded:tiny-random", "hf"),  # converting an embedded model needs torch and transformers
    ("some/hub-model", "hf"),
])
def test_a_local_model_on_the_core_install_names_the_extra(tmp_path, prompts_file, model, extra):
    import yaml

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "name": "local", "output_dir": str(tmp_path / "results"),
        "benchmark": {"name": "file", "path": str(prompts_file)},
        "models": [{"name": "mine", "backend": "hf", "model": model},
                   {"name": "base", "backend": "hf", "model": model}],
        "baselines": ["base"]}))
    env_cache = {"LIMA_EVAL_CACHE": str(tmp_path / "cache")}  # nothing converted yet
    proc = subprocess.run([sys.executable, "-c", BLOCKED_CLI, "run", str(config), "--no-progress"], cwd=tmp_path,
                          env=dict(os.environ) | env_cache, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode != 0
    assert f"pip install 'lima-eval[{extra}]'" in proc.stderr and "Traceback" not in proc.stderr
