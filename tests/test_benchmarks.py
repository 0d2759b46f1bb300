import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO, assert_one_line_error, write_config

from lima_eval.benchmarks import available, load_prompt_file, load_prompts
from lima_eval.config import BenchmarkSpec
from lima_eval.errors import InputError, UnknownNameError


def test_demo_set_has_about_30_diverse_prompts():
    prompts = load_prompts(BenchmarkSpec(name="demo"))
    assert 25 <= len(prompts) <= 40
    assert len({p.id for p in prompts}) == len(prompts)
    assert {"advice", "writing", "coding", "math", "safety"} <= {p.category for p in prompts}


def test_registry_lists_shipped_sets_and_suggests():
    assert {"demo", "lima-test"} <= set(available())
    with pytest.raises(UnknownNameError, match="did you mean 'demo'"):
        load_prompts(BenchmarkSpec(name="dmeo"))


def test_lima_test_from_a_local_copy(shared_data):
    prompts = load_prompts(BenchmarkSpec(name="lima-test", path=str(shared_data / "lima/lima_test_300_prompts.jsonl")))
    assert len(prompts) == 300
    assert [p.id for p in prompts[:3]] == ["0", "1", "2"]
    assert prompts[0].text.startswith("I'm writing a NeurIPS paper")


def test_custom_csv_and_limit(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text('\ufeffid,prompt,category\na,"Hello, world",x\nb,Second,y\nc,Third,z\n', encoding="utf-8")
    prompts = load_prompts(BenchmarkSpec(name="file", path=str(path), limit=2))
    assert [(p.id, p.text, p.category) for p in prompts] == [("a", "Hello, world", "x"), ("b", "Second", "y")]


@pytest.mark.parametrize("lines,message", [
    (['{"id": "a", "prompt": "x"}', "{not json"], "line 2: not valid JSON"),
    (['{"id": "a", "prompt": "x"}', '{"id": "a", "prompt": "y"}'], "line 2, field 'id': duplicate prompt id 'a'"),
    (['{"id": "a", "answer": "x"}'], "line 1: no prompt text"),
    (['{"id": "a", "prompt": "  "}'], "line 1, field 'prompt': empty prompt text"),
    (['[1, 2]'], "line 1: expected a JSON object"),
])
def test_bad_prompt_files_name_line_and_field(tmp_path, lines, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        load_prompt_file(path)
    assert str(err.value) == f"{path}, {message}" or message in str(err.value)
    assert str(path) in str(err.value)


def test_first_user_turn_of_a_conversation_is_the_prompt(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"conversations": ["Q1", "A1", "Q2"]}) + "\n")
    assert [(p.id, p.text) for p in load_prompt_file(path)] == [("0", "Q1")]


BENCH_PLUGIN = '''
"""A benchmark plugin: a folder with benchmark.yaml and its prompts, named by a function's return value."""
from pathlib import Path


def riddles():
    return Path(__file__).parent / "riddles"


def nowhere():
    return Path(__file__).parent / "no-such-folder"
'''


@pytest.fixture
def bench_site(tmp_path):
    """A folder laid out as pip lays out an installed distribution: a package shipping a benchmark folder."""
    site = tmp_path / "site"
    folder = site / "riddleplugin" / "riddles"
    folder.mkdir(parents=True)
    (site / "riddleplugin" / "__init__.py").write_text(BENCH_PLUGIN)
    (folder / "benchmark.yaml").write_text("name: riddles\ndescription: Three riddles.\nfile: prompts.jsonl\n"
                                           "tags: [riddle]\n")
    (folder / "prompts.jsonl").write_text("".join(json.dumps({"id": f"r{i}", "prompt": f"Riddle {i}?"}) + "\n"
                                                  for i in range(1, 4)))
    info = site / "riddleplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: riddleplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [lima_eval.benchmarks]
        riddles = riddleplugin:riddles
        nowhere = riddleplugin:nowhere
    """))
    return site


def bench_cli(site, *args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "lima_eval.cli", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def run_on(tmp_path, benchmark):
    return write_config(tmp_path / f"{benchmark}.yaml", {
        "name": benchmark, "output_dir": str(tmp_path / "results"), "benchmark": {"name": benchmark},
        "models": [{"name": "mine", "backend": "scripted", "model": "echo"},
                   {"name": "base", "backend": "scripted", "model": "fixed:ok"}],
        "baselines": ["base"], "judge": {"backend": "scripted", "model": "fixed:Verdict: A", "order": "random"}})


def test_a_plugin_benchmark_runs_end_to_end_by_name(tmp_path, bench_site):
    out = bench_cli(bench_site, "run", run_on(tmp_path, "riddles"), "--no-progress")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(x) for x in (tmp_path / "results/riddles/generations.jsonl").read_text().splitlines()]
    assert {(r["model"], r["prompt_id"]) for r in rows} == {(m, f"r{i}") for m in ("mine", "base") for i in (1, 2, 3)}
    assert {r["text"] for r in rows if r["model"] == "mine"} == {"Riddle 1?", "Riddle 2?", "Riddle 3?"}
    assert "verdict" in (tmp_path / "results/riddles/judgments.jsonl").read_text()
    typo = bench_cli(bench_site, "run", run_on(tmp_path, "ridles"), "--no-progress")
    assert_one_line_error(typo, "unknown benchmark 'ridles' (did you mean 'riddles'?)")
    missing = bench_cli(bench_site, "run", run_on(tmp_path, "nowhere"), "--no-progress")
    assert_one_line_error(missing, "a plugin's target must be a folder holding benchmark.yaml")
